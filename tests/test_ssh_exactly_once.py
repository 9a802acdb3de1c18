"""Exactly one job per submission when the connection is cut, at every stage of a submit.

A laptop submits through a jump host (dsnode1, tests/infra/ssh-up.sh) to a login host: dsnode2
for the local scheduler, Slurm and Grid Engine, pbshost (openpbs-up.sh's sshd) for PBS. At a
chosen moment the sshd processes serving the connection are killed by PID (the listener's
children; the listeners stay up): while connecting through the jump host, during
authentication, while the script uploads, while the submit command runs, after it returned
but before its answer was read, and (last) after that job has already run and ended. Then
the same spec is submitted again over a new connection, as a user would after the error.

Counted on the far side without abcitrain's parsers: each job echoes its own id into its
output file in the login host's copy of the project, so the ids found there are the jobs
the scheduler made. Every trial must end with exactly one, recorded in the laptop's store.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REAL_PARTS_GROUP, wait_for

from abcitrain.batch.store import JobStore
from abcitrain.errors import TransportError
from abcitrain.service import submitting
from abcitrain.service.plans import load_plan
from abcitrain.transport import RunResult
from abcitrain.transport.ssh import SshTransport

LISTENERS = (Path("/run/abcitrain-ssh-test/sshd.pid"), Path("/run/abcitrain-openpbs-ssh/sshd.pid"))
#: Stages, and how many times each is tried per scheduler (the ambiguous ones twice).
STAGES = {"connect": 1, "auth": 1, "upload": 1, "submit": 2, "answer": 2, "answer-ended": 1}
SCHEDULERS = {
    "local": {"cluster": "local", "resource": "cpu", "host": "far"},
    "slurm": {"cluster": "slurm-test", "resource": "gpu", "host": "far",
              "fixture": "slurm_cluster"},
    "sge": {"cluster": "sge-test", "resource": "rt_F", "host": "far", "fixture": "sge_cluster"},
    "pbs": {"cluster": "pbs-test", "resource": "rt_HF", "host": "farpbs", "group": "gaa50000",
            "fixture": "pbs_cluster"},
}
#: What the first attempt says when it fails, by stage: one line naming the host and the step.
SAYS = {"connect": "was lost while connecting through it to",
        "auth": "during authentication",
        "upload": "was lost while uploading",
        "answer-ended": "Whether the scheduler took the job is not known: submitting the same "
                        "spec again first asks the scheduler",
        # the cut may come before the submit command got its job in (seen in a CI run): then
        # the scheduler has none, and says so
        "submit": "the scheduler has no job from this submission: nothing was submitted"}
#: What the trials saw, for the closing note: (scheduler, stage, first attempt, ids found).
SEEN: list[tuple[str, str, str, int]] = []


def _sessions() -> list[int]:
    """The sshd processes serving connections now: the listeners' children."""
    pids: list[int] = []
    for pidfile in LISTENERS:
        if pidfile.is_file():
            done = subprocess.run(["pgrep", "-P", pidfile.read_text().strip()],
                                  capture_output=True, text=True, check=False)
            pids += [int(p) for p in done.stdout.split()]
    return pids


def _cut() -> None:
    for pid in _sessions():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Cutting(SshTransport):
    """The real transport; at ``stage`` the connection's sshd processes are killed, once."""

    def __init__(self, *args: Any, stage: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stage = stage
        self.cut = False

    def _login(self, client: Any, hop: Any, sock: Any) -> None:
        if not self.cut and hop is self.hops[-1] and self.stage == "connect":
            self.cut = True
            _cut()                                   # the jump host's channel goes with it
        elif hop is self.hops[-1] and ((self.stage == "auth" and not self.cut) or
                                       (self.stage == "answer-ended" and self.cut)):
            # during authentication; and, once the answer was lost, every time the
            # connection is made again (the network stays down until the user retries)
            authenticate = client._auth

            def cut_then_authenticate(*args: Any, **kwargs: Any) -> Any:
                self.cut = True
                _cut()
                return authenticate(*args, **kwargs)

            client._auth = cut_then_authenticate
        super()._login(client, hop, sock)

    def write_bytes(self, path: str, data: bytes, mode: int = 0o644) -> None:
        if not self.cut and self.stage == "upload" and "/.abcitrain/scripts/" in path:
            self.cut = True
            _cut()
        super().write_bytes(path, data, mode)

    def run(self, argv: Sequence[str], cwd: str | None = None,
            timeout: float | None = 120) -> RunResult:
        is_submit = bool(argv) and "/.abcitrain/scripts/" in str(argv[-1])
        if not self.cut and is_submit and self.stage != "upload":
            self.cut = True
            pids = " ".join(str(p) for p in _sessions())
            if self.stage == "submit":      # cut while the submit command runs
                argv = ["sh", "-c", f'kill -9 {pids}; exec "$@"', "sh", *argv]
            else:                           # cut once it has returned, its answer unread
                argv = ["sh", "-c", f'"$@"; kill -9 {pids}', "sh", *argv]
        return super().run(argv, cwd, timeout)


@pytest.fixture(params=list(SCHEDULERS))
def far(request: pytest.FixtureRequest, ssh_nodes: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """One scheduler on the far side, and an ssh config reaching its login host through the
    jump host with the servers' real keys."""
    info = dict(SCHEDULERS[request.param], name=request.param)
    if "fixture" in info:
        request.getfixturevalue(info["fixture"])
    port = (ssh_nodes / "port").read_text().strip()
    known = tmp_path / "known_hosts"
    pbs = Path("/run/abcitrain-openpbs-ssh")
    known.write_text((ssh_nodes / "known_hosts").read_text() + (
        (pbs / "known_hosts").read_text() if (pbs / "known_hosts").is_file() else ""))
    common = f"  User root\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host jump\n  HostName dsnode1\n  Port {port}\n  IdentityFile {ssh_nodes / 'id'}\n"
        f"{common}"
        f"Host far\n  HostName dsnode2\n  Port {port}\n  IdentityFile {ssh_nodes / 'id'}\n"
        f"  ProxyJump jump\n{common}"
        f"Host farpbs\n  HostName pbshost\n  Port 22\n  IdentityFile {pbs / 'id'}\n"
        f"  ProxyJump jump\n{common}")
    monkeypatch.setenv("ABCITRAIN_SSH_CONFIG", str(config))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    yield info


def _active(name: str, scripts: Path) -> list[str]:
    """Ids of the jobs from ``scripts`` that the far side's scheduler still runs or queues,
    asked in its own words (not through abcitrain's parsers)."""
    if name == "slurm":
        out = subprocess.run(["squeue", "--noheader", "--format=%i|%o"], capture_output=True,
                             text=True, check=True).stdout
        return [ln.split("|")[0] for ln in out.splitlines()
                if ln.split("|", 1)[-1].startswith(str(scripts))]
    if name == "sge":
        out = subprocess.run(["qstat", "-j", "*"], capture_output=True, text=True,
                             check=False).stdout
        jobs = re.findall(r"^job_number:\s+(\d+)\n(?:(?!job_number:).*\n)*?script_file:\s+(\S+)",
                          out, re.MULTILINE)
        return [job for job, script in jobs if script.startswith(str(scripts))]
    if name == "pbs":
        out = subprocess.run(["/opt/pbs/bin/qstat", "-f", "-F", "json"], capture_output=True,
                             text=True, check=False, env={**os.environ,
                                                          "PBS_CONF_FILE": "/etc/pbs.conf"})
        jobs = json.loads(out.stdout or "{}").get("Jobs") or {}
        return [job for job, attrs in jobs.items()
                if str(scripts) in str(attrs.get("Submit_arguments", ""))]
    spool = Path("/run/abcitrain-ssh-test/local-spool/jobs")
    found = []
    for job in spool.glob("*/job.json"):
        data = json.loads(job.read_text())
        state = json.loads((job.parent / "state.json").read_text()).get("state") \
            if (job.parent / "state.json").is_file() else "PENDING"
        if data.get("source", "").startswith(str(scripts)) and state not in (
                "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            found.append(data["job_id"])
    return found


def _ran(there: Path) -> set[str]:
    """The job ids that wrote an output file in the far copy of the project."""
    ids: set[str] = set()
    for out in there.glob("once*.o*"):
        ids.update(re.findall(r"^ran (\S+)$", out.read_text(errors="replace"), re.MULTILINE))
    return ids


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_cut_at_any_stage_then_a_resubmit_gives_exactly_one_job(
        far: dict[str, Any], stage: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for trial in range(STAGES[stage]):
        project = tmp_path / f"laptop-{trial}" / "proj"
        project.mkdir(parents=True)
        there = tmp_path / f"login-{trial}" / "proj"
        monkeypatch.chdir(project)
        spec = project / "job.yaml"
        spec.write_text(yaml.safe_dump({
            "name": f"once-{far['name']}", "cluster": far["cluster"],
            "resource": far["resource"], "walltime": "0:05:00",
            **({"group": far["group"]} if "group" in far else {}),
            "command": ["bash", "-c", 'echo "ran $ABCITRAIN_JOB_ID"']}))
        store = JobStore()
        first = Cutting(far["host"], stage=stage, local_root=str(project),
                        remote_root=str(there), connect_timeout=10)
        outcome = "answered"
        try:
            sub = submitting.submit(load_plan(spec), store, transport=first)
        except TransportError as exc:
            outcome = "error"
            said = str(exc)
            assert "\n" not in said and ("far" in said or "jump" in said), said
            assert SAYS[stage] in said, said
            sub = None
        finally:
            first.close()
        assert first.cut, f"the {stage} cut never happened"
        scripts = there / ".abcitrain" / "scripts"
        if sub is None:
            if stage == "answer-ended":
                # the job was made; it runs and ends (Grid Engine forgets it at once) before
                # the user, back online, submits again
                wait_for(lambda d=there: _ran(d), 180, "the first job to run")
                wait_for(lambda d=scripts: not _active(far["name"], d), 180,
                         "the first job to leave the queue")
            again = SshTransport(far["host"], local_root=str(project), remote_root=str(there))
            try:
                sub = submitting.submit(load_plan(spec), store, transport=again)
            finally:
                again.close()
        job_id = sub.job_id
        assert job_id is not None
        wait_for(lambda j=job_id, d=there, s=scripts: j in _ran(d) and not _active(
            far["name"], s), 180, "the job to run and end")
        if stage == "answer-ended":     # the job noted its id under its token as it started
            marks = list((there / ".abcitrain" / "started").iterdir())
            assert [m.read_text().strip() for m in marks] == [job_id], marks
        made = _ran(there)
        SEEN.append((far["name"], stage, outcome, len(made)))
        assert made == {job_id}, (stage, outcome, made)
        assert store.get(far["cluster"], job_id) is not None
        assert store.pending_for(far["cluster"], submitting._digest(
            load_plan(spec), str(project))) == []
        err = capsys.readouterr().err
        assert "Traceback" not in err, err


@pytest.mark.xdist_group(REAL_PARTS_GROUP)       # in the worker that ran the trials
def test_zz_report(request: pytest.FixtureRequest) -> None:
    """The trials' counts, printed for the closing note (run with -s to see them)."""
    if not SEEN:
        pytest.skip("no trial ran in this session")
    rows = {}
    for name, stage, outcome, made in SEEN:
        key = (name, stage)
        trials, errors, jobs = rows.get(key, (0, 0, 0))
        rows[key] = (trials + 1, errors + (outcome == "error"), jobs + made)
    print("\nscheduler stage trials first-attempt-errors jobs-on-far-side", file=sys.stderr)
    for (name, stage), (trials, errors, jobs) in sorted(rows.items()):
        print(f"{name} {stage} {trials} {errors} {jobs}", file=sys.stderr)
    assert all(made == 1 for *_, made in SEEN)
