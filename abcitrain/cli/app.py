"""The ``abcitrain`` command group: finds each verb in its module, turns domain errors into
exit statuses in one place (``_Group.invoke``): bad input 2, scheduler refusals and transport
failures 1.

Kept light on purpose: login nodes read Python from shared file systems, so a verb's module
is imported only when that verb runs (or ``--help`` lists it), heavy modules (torch,
deepspeed, paramiko) never on the way, and the service layer only inside the verbs.
"""

from __future__ import annotations

import errno
import importlib
from typing import Any

import click

from .. import __version__
from ..errors import AbcitrainError, NotWritable

#: What an OSError says when a folder cannot be written: the user's to fix, not a crash.
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


class _UserError(click.ClickException):
    """An AbcitrainError shown to the user: its message, no traceback."""

    def __init__(self, exc: AbcitrainError) -> None:
        super().__init__(str(exc))

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _BadInput(_UserError):
    """Bad input: exit status 2, as for a usage error."""

    exit_code = 2


# Each verb and the module (in this package) that defines it, imported only when run or listed
# in --help: every module's click decorators cost milliseconds that `render` need not pay.
_VERBS = {"render": "submitting", "check": "submitting", "submit": "submitting",
          "status": "following", "cancel": "following", "release": "following",
          "logs": "following", "points": "points",
          "clusters": "clusters",
          "reserve": "reserve", "memory": "memory", "plan": "train", "launch": "train",
          "init": "train", "move-aside": "state", "import": "importer", "ssh": "ssh",
          "container": "container", "board": "board"}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_VERBS)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in _VERBS:
            from ..util.words import did_you_mean

            ctx.fail(f"no such command {name!r}{did_you_mean(name, _VERBS)}; "
                     "`abcitrain --help` lists them")
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _VERBS:
            return None
        module = importlib.import_module(f".{_VERBS[name]}", __package__)
        attr = name.replace("-", "_")
        command = getattr(module, attr, None) or getattr(module, attr + "_")   # import_
        assert isinstance(command, click.Command)
        from .examples import with_examples

        return with_examples(command, name)

    def invoke(self, ctx: click.Context) -> Any:
        as_json = "--json" in ctx.args        # read now: click empties ctx.args as it goes
        try:
            return super().invoke(ctx)
        except AbcitrainError as exc:
            if as_json:
                # asked for JSON: the refusal too (docs/json.md, the error object)
                import json

                from .output import error_json

                click.echo(json.dumps(error_json(exc, None), indent=1))
                ctx.exit(exc.exit_code)
            raise (_BadInput if exc.exit_code == 2 else _UserError)(exc) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # the reader went away (`abcitrain memory ... | head -1`): click ends quietly
            raise
        except OSError as exc:
            if exc.errno not in _NOT_WRITABLE:
                raise _Crash(exc) from None
            # a read-only, forbidden or full folder: the user's to fix, not a crash
            raise _UserError(NotWritable(str(exc.filename or "a file"),
                                         exc.strerror or str(exc))) from None
        except Exception as exc:      # the last resort: one line, the trace in a file
            raise _Crash(exc) from None


class _Crash(click.ClickException):
    """An error abcitrain did not foresee: one line, and where the full trace was written."""

    def __init__(self, exc: Exception) -> None:
        import traceback

        trace = "".join(traceback.format_exception(exc))
        where = _write_trace(trace)
        detail = str(exc).splitlines()[0][:300] if str(exc) else ""
        super().__init__(f"abcitrain failed unexpectedly: {type(exc).__name__}"
                         + (f": {detail}" if detail else "")
                         + (f"\nThe full trace is in {where}; please report it."
                            if where else "\nThe trace could not be saved."))

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _write_trace(trace: str) -> str | None:
    import tempfile
    import time
    from pathlib import Path

    from ..util.paths import data_dir

    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    for folder in (data_dir() / "crashes", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(trace)
            return str(path)
        except OSError:
            continue
    return None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="abcitrain")
def cli() -> None:
    """Describe a training job once; run it on PBS Pro, Grid Engine, Slurm or this machine."""


def main() -> None:
    """Console entry point."""
    cli(prog_name="abcitrain")


if __name__ == "__main__":
    main()
