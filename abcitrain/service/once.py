"""Exactly one job per submission, however the connection behaves.

Each submission gets a token: its script's file name (``NAME-STAMP-RANDOM``), unique to it.
The scheduler records the token where a user can ask for it while it holds the job (the
script path in ``squeue``, ``qstat -j``, ``qstat -x``, the local spool: the backend's
``submitted_argv``), and the job itself writes its id under the token as it starts
(``.abcitrain/started/TOKEN`` in the submit folder, from the line ``stamp`` sets in the
script). A submission whose answer was lost therefore finds its job while it waits or runs
(the queue), and once it has started, after the queue forgot it (the mark): Slurm drops an
ended job from ``squeue`` after MinJobAge, Grid Engine at once, and neither sacct's nor
qacct's records carry anything the submitter chose. A job deleted before it ever started
leaves neither; it never ran, so submitting again is what the user wanted.
"""

from __future__ import annotations

import secrets
import time
from pathlib import PurePosixPath

from ..backends.base import Backend, Output
from ..batch.store import JobStore
from ..errors import FileMissing, SchedulerError, TransportError
from ..transport import Transport
from ..transport.ssh import SshTransport
from .common import refusal

#: Where, under the submit folder, the rendered scripts are kept and jobs leave their marks.
SCRIPTS_DIR = PurePosixPath(".abcitrain") / "scripts"
MARKS_DIR = PurePosixPath(".abcitrain") / "started"

#: The template's line that ``stamp`` fills in (templates/job.sh.j2).
UNSTAMPED = "\nABCITRAIN_SUBMISSION=unsubmitted\n"


def new_script_name(name: str) -> str:
    """A script file name no other submission has: the job's name, the time, 8 random hex
    digits (two submissions of one spec in the same second from one process differ)."""
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}.sh"


def token_of(script_path: str) -> str:
    """The submission token of a script path: its file name without ``.sh``."""
    return PurePosixPath(script_path).stem


def stamp(script: str, script_path: str) -> str:
    """``script`` as submitted from ``script_path``: its submission line names the token.
    A template without that line (a plugin's own) is returned unchanged."""
    return script.replace(UNSTAMPED, f"\nABCITRAIN_SUBMISSION={token_of(script_path)}\n", 1)


def mark_path(script_path: str) -> str:
    """Where the job from ``script_path`` notes its id as it starts."""
    scripts = PurePosixPath(script_path).parent
    return str(scripts.parent.parent / MARKS_DIR / token_of(script_path))


def scheduler_path(transport: Transport, path: str) -> str:
    """``path`` as the scheduler's host sees it."""
    return transport.remote_path(path) if isinstance(transport, SshTransport) else path


def can_ask(backend: Backend) -> bool:
    """Whether the scheduler can be asked which jobs it holds, by script."""
    return backend.submitted_argv() is not None


def queued(backend: Backend, transport: Transport) -> dict[str, str]:
    """Script path -> job id of my jobs the scheduler holds (one query)."""
    argv = backend.submitted_argv()
    assert argv is not None
    result = transport.run(argv)
    out = Output(result.stdout, result.stderr, result.returncode)
    if result.returncode != 0:
        if backend.holds_no_jobs(out):
            return {}
        raise refusal(backend, result)
    return backend.parse_submitted(out)


def started(transport: Transport, script_path: str) -> str | None:
    """The id the job from ``script_path`` noted as it started; None when it has not."""
    try:
        text = transport.read_text(mark_path(script_path))
    except FileMissing:
        return None
    job_id = text.strip().splitlines()[0].strip() if text.strip() else ""
    return job_id or None


def _ere(text: str) -> str:
    """``text`` as an extended regular expression that matches it and nothing else, with its
    last character in brackets: the pattern then never matches the command line that
    carries it (pgrep would otherwise find its own shell)."""
    special = set("\\.[]()*+?{}|^$")
    escaped = "".join(f"\\{c}" if c in special else c for c in text[:-1])
    last = text[-1]
    return escaped + ("\\" + last if last in "\\^" else f"[{last}]")


def wait_for_submit(transport: Transport, script_path: str, timeout_s: int = 60) -> None:
    """Over SSH, wait until no process on the login node still runs with this submission's
    script on its command line: a connection cut while qsub ran leaves qsub running there,
    and asking the queue before it ends would miss the job it is about to make. Nothing to
    wait for here (a local submit's answer cannot be lost), or where pgrep is missing."""
    if not isinstance(transport, SshTransport):
        return
    loop = ('end=$(( $(date +%s) + $2 )); while pgrep -f -- "$1" >/dev/null 2>&1; do '
            '[ "$(date +%s)" -lt "$end" ] || exit 3; sleep 0.2; done')
    result = transport.run(["sh", "-c", loop, "sh",
                            _ere(scheduler_path(transport, script_path)), str(timeout_s)],
                           timeout=timeout_s + 30)
    if result.returncode == 3:
        raise TransportError(f"the submit command of {script_path} is still running on the "
                             f"login node after {timeout_s} s")


def find_job(backend: Backend, transport: Transport, scripts: list[str],
             known: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(script path, job id) of the first of ``scripts`` whose job the scheduler holds or
    which has started; None when none has. Raises TransportError or SchedulerError when
    the scheduler cannot be asked. The queue is asked first: a job that is not in it has
    either never been submitted or has already started, and so has written its mark."""
    if known is None:
        known = queued(backend, transport)
    for script in scripts:
        job_id = known.get(scheduler_path(transport, script))
        if job_id is not None:
            return script, job_id
    for script in scripts:
        job_id = started(transport, script)
        if job_id is not None:
            return script, job_id
    return None


def earlier_submission(store: JobStore | None, backend: Backend, transport: Transport,
                       cluster: str, digest: str) -> tuple[str, str] | None:
    """(script path, job id) of an earlier submission of the same job whose answer was
    lost and which the scheduler took; None when there is none (those it did not take
    never reached it and are forgotten)."""
    if store is None:
        return None
    earlier = store.pending_for(cluster, digest)
    if not earlier:
        return None
    try:
        for script in earlier:
            wait_for_submit(transport, script)
        # a scheduler that cannot be asked: only the jobs that have started can be found
        found = find_job(backend, transport, earlier, None if can_ask(backend) else {})
    except (TransportError, SchedulerError) as exc:
        raise TransportError(f"an earlier submission of this job did not get its answer, "
                             f"and the scheduler cannot be asked whether it took it ({exc}). "
                             "Nothing was submitted: try again when the connection "
                             "works") from None
    if found is None:
        for script in earlier:
            store.drop_pending(script)
    return found
