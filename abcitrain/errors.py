"""The error hierarchy: every error a user can meet carries a message that says what to do next.

The CLI turns these into exit statuses in one place (``cli.main``): input problems exit 2,
scheduler refusals and transport failures exit 1. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The longest a problem is printed (what it quotes is cut beyond this).
MAX_PROBLEM_CHARS = 600


class AbcitrainError(Exception):
    """Base class of every error abcitrain raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One problem found in user input: where it is, and what is wrong with it."""

    where: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        # a problem quotes what it found: a 50 MB value must not become a 50 MB message
        if len(text) > MAX_PROBLEM_CHARS:
            text = (f"{text[:MAX_PROBLEM_CHARS]}... ({len(text) - MAX_PROBLEM_CHARS} "
                    "characters cut)")
        return text


class InputError(AbcitrainError):
    """Bad user input (a job spec, a profile, a command-line value): lists every problem."""

    exit_code = 2

    def __init__(self, title: str, problems: Sequence[Problem]) -> None:
        self.title = title
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        """Return the message: the title, then one line per problem."""
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{self.title} ({count} {noun}):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class UnknownNameError(AbcitrainError):
    """A name (cluster, resource type, job) that is not known; lists the valid choices."""

    exit_code = 2


class SchedulerError(AbcitrainError):
    """A scheduler command failed or refused: keeps its argv, exit status and its own words."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stdout: str,
        stderr: str,
        explanation: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.explanation = explanation
        super().__init__(self.render())

    def render(self) -> str:
        """Return the scheduler's words, then a plain explanation when one is known."""
        words = (self.stderr.strip() or self.stdout.strip() or "(no output)").splitlines()
        program = self.argv[0] if self.argv else "?"
        if len(self.argv) > 2 and self.argv[1:3] == ["-m", "abcitrain.localsched"]:
            program = "abcitrain's local scheduler"    # not "/path/to/python"
        lines = [f"`{program}` failed with exit status {self.returncode}:"]
        lines += [f"  {w}" for w in words]
        if self.explanation:
            lines.append(f"What it means: {self.explanation}")
        return "\n".join(lines)


class TransportError(AbcitrainError):
    """A command could not be run at all (program missing, connection lost)."""


class FileMissing(TransportError):
    """The file asked for is not there (the host itself answered: it is reachable)."""


class ProgramMissing(TransportError):
    """The command's program is not installed where it was to run: it certainly did not
    run."""


class WrongScheduler(ProgramMissing):
    """The program on PATH is another scheduler's same-named command (Grid Engine's qsub for
    a PBS cluster): nothing was run; the setup, not the job, needs changing."""

    exit_code = 2


class StateFileError(AbcitrainError):
    """One of abcitrain's own files (the job store, the ledger) cannot be read: says which,
    what is wrong, and how to move it aside (abcitrain never deletes it)."""

    def __init__(self, path: str, what: str, kind: str) -> None:
        self.path = path
        self.kind = kind
        super().__init__(
            f"{path}: {what}.\nabcitrain does not delete or overwrite it. To start a new "
            f"{kind}, run `abcitrain move-aside {kind}`: the file is renamed to "
            f"{path}.broken-DATE (keep it; `sqlite3 FILE .recover` may save its rows).")


class NotWritable(AbcitrainError):
    """A folder abcitrain must write in is read-only, not permitted, or full: names it and
    the way out (exit status 1; nothing was submitted or charged)."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        super().__init__(
            f"cannot write {path}: {why}. abcitrain keeps its job store and ledger in its "
            "state folder (ABCITRAIN_DATA_DIR, or ~/.local/share/abcitrain) and a job's "
            "script under the submit folder's .abcitrain/: make them writable, or point "
            "ABCITRAIN_DATA_DIR at a folder that is. Nothing was submitted or charged.")
