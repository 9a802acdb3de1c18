"""Quoting for the script body: every user value becomes exactly one shell word on one line.

Printable text is single-quoted (``shlex.quote``). Text with newlines or other control
characters uses bash's ``$'...'`` form with escapes, so no user value can ever start a new
line in a rendered script (where a scheduler might read it as a directive).
"""

from __future__ import annotations

import re
import shlex

#: bash's reserved words: unquoted in a command's first place they are syntax, not a
#: program (a command ["fi"] broke the script; ["time", ...] would become bash's keyword).
#: shlex.quote leaves them bare, so they are quoted here wherever they appear.
RESERVED = frozenset(("!", "case", "coproc", "do", "done", "elif", "else", "esac", "fi",
                      "for", "function", "if", "in", "select", "then", "time", "until",
                      "while", "{", "}", "[[", "]]"))


def quote(value: str) -> str:
    """Return ``value`` as one bash word that expands back to exactly ``value``."""
    if "\x00" in value:
        raise ValueError("a NUL byte cannot be passed through a shell")
    if value in RESERVED:
        return f"'{value}'"
    if all(ch.isprintable() for ch in value):
        return shlex.quote(value)
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8"))
    return "$'" + "".join(out) + "'"


# ${NAME} of an identifier only: the one way a value refers to a variable of the running job
# ($PBS_LOCALDIR, $SGE_LOCALDIR, $HOME, ...); "$${" writes a literal "${".
_JOB_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def quote_expanding(value: str) -> str:
    """Return ``value`` as one bash word in which each ``${NAME}`` (NAME an identifier) is
    expanded by the job's shell, double-quoted (no word splitting, no globbing), and
    everything else is quoted as ``quote`` does: no ``$(...)``, backquote, ``$NAME`` or
    ``${NAME:-...}`` ever runs or expands. ``$${`` stands for a literal ``${``."""
    words: list[str] = []
    literal: list[str] = []
    pos = 0
    for m in _JOB_VAR.finditer(value):
        literal.append(value[pos:m.start()])
        if m.group(1) is None:
            literal.append("${")
        else:
            if "".join(literal):
                words.append(quote("".join(literal)))
            literal = []
            words.append(f'"${{{m.group(1)}}}"')
        pos = m.end()
    literal.append(value[pos:])
    tail = "".join(literal)
    if tail or not words:
        words.append(quote(tail))
    return "".join(words)


def _under_home(value: str) -> str | None:
    """What follows a leading ``~`` (``""`` or ``/...``); None when ``value`` has none."""
    return value[1:] if value == "~" or value.startswith("~/") else None


def quote_path(value: str) -> str:
    """A path as one bash word, expanded as a user who wrote it in a script meant it: a
    leading ``~`` or ``~/`` is the job's ``$HOME``, and ``${NAME}`` expands
    (``quote_expanding``); nothing else does."""
    rest = _under_home(value)
    return quote_expanding(value if rest is None else "${HOME}" + rest)


def quote_home(value: str) -> str:
    """A folder as one bash word: a leading ``~`` or ``~/`` is the job's ``$HOME`` (where
    PBS starts a job); everything else is literal, as ``quote`` writes it."""
    rest = _under_home(value)
    if rest is None:
        return quote(value)
    return '"${HOME}"' + (quote(rest) if rest else "")
