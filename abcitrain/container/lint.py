"""Checks of a definition file before anything is built: a lint of its text (any definition,
rendered or hand-written), and spython's Singularity recipe parser reading back what
abcitrain rendered."""

from __future__ import annotations

import re
import shlex
import tempfile
from pathlib import Path

from ..errors import Problem
from .spec import PIP_PINNED_RE, ContainerSpec

#: The sections a definition abcitrain renders always has; a hand-written one is told when it
#: lacks one (labels carry the recipe, test proves the image works before it is used).
EXPECTED_SECTIONS = ("post", "environment", "labels", "test")
_SECTION = re.compile(r"%([A-Za-z]+)\b")
_PIP = re.compile(r"\bpip3?\s+install\b|-m\s+pip\s+install\b")
#: an environment value that the shell would split or expand when %environment is sourced
_UNQUOTED = re.compile(r"""[\s$`;&|<>(){}*?!\[\]~#\\]""")


def sections(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The header keywords (Bootstrap, From, ...) and each %section's lines."""
    header: dict[str, str] = {}
    body: dict[str, list[str]] = {}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        m = _SECTION.match(line)
        if m and raw.startswith("%"):
            current = m[1].lower()
            body.setdefault(current, [])
            continue
        if current is None:
            if line and not line.startswith("#") and ":" in line:
                key, _, value = line.partition(":")
                header[key.strip().lower()] = value.strip()
        elif line and not line.startswith("#"):
            body[current].append(line)
    return header, body


def lint(text: str) -> list[Problem]:
    """Every problem the lint finds in a definition (errors and warnings)."""
    header, body = sections(text)
    found: list[Problem] = []
    for key in ("bootstrap", "from"):
        if key not in header:
            found.append(Problem("header", f"no {key.capitalize()}: line before the first "
                                 "section"))
    for name in EXPECTED_SECTIONS:
        if name not in body:
            found.append(Problem(f"%{name}", "missing section", "warning"))
    for line in body.get("files", []):
        parts = line.split()
        if len(parts) >= 2 and not parts[-1].startswith("/"):
            found.append(Problem("%files", f"{line!r}: the destination {parts[-1]!r} is "
                                 "relative; write an absolute path in the image"))
    for line in body.get("post", []):
        if not _PIP.search(line):
            continue
        words = _words(line)
        start = next((i for i, w in enumerate(words) if w == "install"), len(words)) + 1
        skip_next = False
        for word in words[start:]:
            if skip_next:
                skip_next = False
                continue
            if word in ("-r", "-c", "-i", "--index-url", "--extra-index-url", "-f",
                        "--find-links", "--target", "-t"):
                skip_next = True
                continue
            if word.startswith(("-", "/", ".")) or word.endswith((".whl", ".tar.gz")):
                continue
            if not re.fullmatch(PIP_PINNED_RE, word):
                found.append(Problem("%post", f"{word!r} is not pinned (NAME==VERSION): the "
                                     "image would change from one build to the next"))
    for line in body.get("environment", []):
        m = re.match(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        if m and _unquoted(m[2]):
            found.append(Problem("%environment", f"{m[1]}: the value {m[2]!r} is not quoted; "
                                 "the shell that reads %environment would split or expand "
                                 "it"))
    return found


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def _unquoted(value: str) -> bool:
    """True when ``value`` has a character the shell treats specially outside quotes."""
    out, quote = [], None
    i = 0
    while i < len(value):
        ch = value[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "\\":
            i += 1
        else:
            out.append(ch)
        i += 1
    return bool(_UNQUOTED.search("".join(out))) or quote is not None


def spython_problems(text: str, spec: ContainerSpec) -> list[Problem]:
    """Read the rendered definition back with spython's Singularity recipe parser (the same
    reader spython's converters use) and compare what it found with the spec: base image,
    files, environment, labels, build steps, test and runscript. A problem for each
    difference. (spython's writer cannot write files or labels back: only its parser is
    used.)"""
    from spython.main.parse.parsers import SingularityParser

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.def"
        path.write_text(text)
        recipe = SingularityParser(str(path)).recipe["spython-base"]
    found: list[Problem] = []

    def differ(what: str, got: object, want: object) -> None:
        if got != want:
            found.append(Problem(what, f"spython read {got!r}, the spec says {want!r}"))

    from .render import labels_of

    differ("base", recipe.fromHeader, spec.source)
    differ("files", [tuple(f.split()) for f in recipe.files], list(spec.files))
    env = dict(e.split("=", 1) for e in recipe.environ)
    differ("environment", {k: _unquote(v) for k, v in env.items()}, dict(spec.environment))
    labels = dict([*label.split(None, 1), ""][:2] for label in recipe.labels)
    differ("labels", labels, labels_of(spec))
    steps = [s for s in recipe.install if "/tests.sh" not in s]
    for pkg in spec.python_packages:
        if not any(pkg in _words(step) for step in steps):
            found.append(Problem("python_packages", f"spython found no step installing {pkg}"))
    if spec.runscript:
        differ("runscript", _words(recipe.cmd or ""), ["exec", *spec.runscript, "$@"])
    tests = [s for s in recipe.install if s.startswith("echo ") and "/tests.sh" in s]
    differ("test", len(tests), max(1, len(spec.test)))
    return found


def _unquote(value: str) -> str:
    words = _words(value)
    return words[0] if len(words) == 1 else value
