"""ABCI 3.0's scheduler, live: OpenPBS built from source (tests/infra/openpbs-build.sh) runs a
server host and a second mom (openpbs-up.sh), and abcitrain submits, follows, cancels and
settles real jobs on it through its own CLI, as on ABCI 3.0 (profile pbs-test: abci3's
queues, limits and prices). The replays of captured answers are tests/test_pbs_replay.py.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import cli, ended, status_row, submitted, wait_for
from harness.jsonschemas import validate

from abcitrain.points.ledger import Ledger

PBS_BIN = "/opt/pbs/bin"


@pytest.fixture(autouse=True)
def pbs(pbs_cluster: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PBS's own commands first on PATH (Grid Engine's qsub may be installed too)."""
    monkeypatch.setenv("PATH", f"{PBS_BIN}:{os.environ['PATH']}")
    monkeypatch.setenv("PBS_CONF_FILE", "/etc/pbs.conf")
    yield


def _spec(tmp_path: Path, name: str, **fields: Any) -> str:
    data = {"name": name, "cluster": "pbs-test", "resource": "rt_HF", "group": "gaa50000",
            "walltime": "0:10:00", "command": ["bash", "-c", "echo hello $ABCITRAIN_JOB_ID"],
            **fields}
    if "script" in fields:
        data.pop("command")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)





def _charge(job_id: str) -> dict[str, Any]:
    return {r["ref"]: r for r in Ledger().rows()}[job_id]


def _qstat(job_id: str) -> dict[str, Any]:
    out = subprocess.run([f"{PBS_BIN}/qstat", "-x", "-f", "-F", "json", job_id],
                         capture_output=True, text=True, check=True).stdout
    jobs: dict[str, Any] = json.loads(out)["Jobs"]
    return next(iter(jobs.values()))


def test_a_job_ends_with_its_own_exit_status_log_and_pbs_charge(tmp_path: Path) -> None:
    job = submitted(_spec(tmp_path, "fails", command=["bash", "-c", "echo out-$PBS_JOBID; exit 3"]))
    row: Any = wait_for(lambda: ended(job), 120, f"PBS job {job}")
    assert (row["state"], row["exit_code"]) == ("FAILED", 3), row
    assert f"out-{job}" in cli("logs", job).output
    charge = _charge(job)
    pbs_walltime = _qstat(job)["resources_used"]["walltime"]
    h, m, s = (int(x) for x in pbs_walltime.split(":"))
    seconds = max(h * 3600 + m * 60 + s, 1.8)            # ABCI's minimum charge: 1.8 s
    # 7.5 points per node-hour on rt_HF (abci3's tariff), one node
    expected = Decimal("7.5") * Decimal(str(seconds)) / 3600
    assert Decimal(charge["actual_e4"]) / 10000 == expected.quantize(Decimal("0.0001")), charge


def test_a_shell_body_job_runs_its_lines_with_its_exit_status(tmp_path: Path) -> None:
    body = "for i in 1 2; do echo line-$i; done\nstem=${PBS_JOBID%%.*}\necho id-$stem\nexit 4\n"
    job = submitted(_spec(tmp_path, "body", script=body))
    row: Any = wait_for(lambda: ended(job), 120, "PBS shell body")
    assert (row["state"], row["exit_code"]) == ("FAILED", 4), row
    log = cli("logs", job).output
    assert "line-1\nline-2\n" in log and f"id-{job.split('.')[0]}" in log


def test_output_and_error_go_to_folders_that_did_not_exist(tmp_path: Path) -> None:
    """Log folders named by the spec are made before qsub: PBS does not make them, and
    leaves files it cannot deliver in its spool's undelivered folder. In a folder, PBS
    names the files itself (JOBID.OU, JOBID.ER), and `abcitrain logs` reads that name; an
    error file of PBS's own name (an imported script's) is PBS's default, NAME.eSEQUENCE."""
    job = submitted(_spec(tmp_path, "inlogs", output="logs/{name}.o{job_id}",
                          error="logs/err/{name}.e{job_id}",
                          command=["bash", "-c", "echo to-out; echo to-err >&2"]))
    apart = submitted(_spec(tmp_path, "apart", error="{name}.e{job_id}",
                            command=["bash", "-c", "echo to-out; echo to-err >&2"]))
    # an imported script's -o folder/, for an array: one file per subjob, by its own id
    tasks = submitted(_spec(tmp_path, "tasks", output="tasklogs/", array="1-2",
                            command=["bash", "-c", "echo task-$ABCITRAIN_ARRAY_INDEX"]))
    for each in (job, apart, tasks):
        row: Any = wait_for(lambda each=each: ended(each), 120, f"PBS job {each}")
        assert (row["state"], row["exit_code"]) == ("COMPLETED", 0), row
    assert (tmp_path / "logs" / f"{job}.OU").read_text().strip() == "to-out"
    assert (tmp_path / "logs" / "err" / f"{job}.ER").read_text().strip() == "to-err"
    assert "to-out" in cli("logs", job).output
    seq = apart.split(".")[0]
    assert (tmp_path / f"apart.o{seq}").read_text().strip() == "to-out"
    assert (tmp_path / f"apart.e{seq}").read_text().strip() == "to-err"
    assert "to-out" in cli("logs", apart).output
    for index in (1, 2):
        subjob = tasks.replace("[]", f"[{index}]")
        assert (tmp_path / "tasklogs" / f"{subjob}.OU").read_text().strip() == f"task-{index}"
        assert f"task-{index}" in cli("logs", tasks, "--task", str(index)).output


def test_two_nodes_with_scatter_are_two_hosts_in_the_node_file(tmp_path: Path) -> None:
    job = submitted(_spec(tmp_path, "pair", nodes=2, extra_directives=["-l place=scatter"],
                        command=["bash", "-c", 'echo hosts=$(paste -sd, "$ABCITRAIN_NODEFILE")'
                                 ' nnodes=$ABCITRAIN_NNODES']))
    row: Any = wait_for(lambda: ended(job), 120, "two-node job")
    assert row["state"] == "COMPLETED", row
    log = cli("logs", job).output
    assert "hosts=pbshost,pbsnode2 nnodes=2" in log, log
    assert _charge(job)["units"] == 2


def test_an_array_with_one_failing_task_is_failed_and_every_task_is_charged(
        tmp_path: Path) -> None:
    job = submitted(_spec(tmp_path, "arr", array="1-3", command=[
        "bash", "-c", '[ "$ABCITRAIN_ARRAY_INDEX" != 2 ] || exit 5; echo task-ok']))
    row: Any = wait_for(lambda: ended(job), 180, "array")
    assert (row["state"], row["exit_code"]) == ("FAILED", 5), row
    assert {t["index"]: t["state"] for t in row["tasks"]} == {
        "1": "COMPLETED", "2": "FAILED", "3": "COMPLETED"}
    charge = _charge(job)
    assert charge["actual_e4"] is not None and charge["actual_e4"] > 0
    # three tasks, each charged at least ABCI's 1.8 s minimum at 7.5 points per hour
    assert Decimal(charge["actual_e4"]) / 10000 >= Decimal("7.5") * 3 * Decimal("1.8") / 3600


def test_afterok_waits_then_runs_and_after_a_failure_pbs_deletes_the_dependent(
        tmp_path: Path) -> None:
    first = submitted(_spec(tmp_path, "first", command=["bash", "-c", "sleep 4; exit 0"]))
    then = submitted(_spec(tmp_path, "then", depends_on=[first]))
    assert status_row(then)["state"] == "HELD"                  # PBS holds it while it waits
    row: Any = wait_for(lambda: ended(then), 180, "dependent job")
    assert row["state"] == "COMPLETED", row
    bad = submitted(_spec(tmp_path, "bad", command=["bash", "-c", "exit 1"]))
    never = submitted(_spec(tmp_path, "never", depends_on=[bad]))
    row = wait_for(lambda: ended(never), 180, "job after a failure")
    assert row["state"] == "CANCELLED", row
    assert "dependency" in row["detail"], row
    assert _charge(never)["actual_e4"] == 0                # it never ran: nothing charged


def test_hold_release_and_cancel_of_a_queued_and_a_running_job(tmp_path: Path) -> None:
    held = submitted(_spec(tmp_path, "held", command=["sleep", "60"]), "--hold")
    wait_for(lambda: status_row(held)["state"] == "HELD", 60, "held job")
    cli("release", held)
    wait_for(lambda: status_row(held)["state"] == "RUNNING", 90, "released job to run")
    waiting = submitted(_spec(tmp_path, "waiting", depends_on=[held]))
    cli("cancel", waiting)
    cli("cancel", held)
    for job in (held, waiting):
        row: Any = wait_for(lambda j=job: ended(j), 120, f"cancelled {job}")
        assert row["state"] == "CANCELLED", row
    assert _charge(waiting)["actual_e4"] == 0
    assert _charge(held)["actual_e4"] > 0                  # it ran: charged what it ran


def test_a_reservation_is_created_listed_shown_used_and_cancelled(tmp_path: Path) -> None:
    """pbs_rsub / pbs_rstat / pbs_rdel (ABCI's qrsub / qrstat / qrdel wrap them); a job inside
    goes to the reservation's queue with RTYPE in its -v list, as ABCI 3.0 asks."""
    out = cli("reserve", "create", "--cluster", "pbs-test", "--type", "rt_HF", "--nodes", "1",
              "--hours", "1", "--start", "now", "--name", "live", "--group", "gaa50000").output
    resv = out.split()[3]
    queue = resv.split(".")[0]
    try:
        assert "charged:" in out
        listed = json.loads(cli("reserve", "list", "--cluster", "pbs-test", "--json").output)
        assert [r for r in listed if r["id"].split(".")[0] == queue], listed
        for item in listed:                          # docs/json.md's schema, live
            validate("reservation", item)
        validate("reservation", json.loads(cli("reserve", "show", resv, "--cluster",
                                               "pbs-test", "--json").output))
        wait_for(lambda: json.loads(cli("reserve", "show", resv, "--cluster", "pbs-test",
                                        "--json").output).get("nodes") == 1, 120,
                 "the reservation to be confirmed with its node")
        job = submitted(_spec(tmp_path, "inresv", reservation=queue, command=["true"]))
        attrs = _qstat(job)
        assert attrs["queue"] == queue                          # a reservation is its queue
        assert attrs["Variable_List"].get("RTYPE") == "rt_HF"        # -v RTYPE, as ABCI asks
        row: Any = wait_for(lambda: ended(job), 180, "the job in the reservation")
        assert row["state"] == "COMPLETED", row
    finally:
        done = cli("reserve", "cancel", resv, "--cluster", "pbs-test", ok=None)
    assert done.exit_code == 0 and "cancelled" in done.output, done.output


def test_one_qstat_answers_for_every_job_of_a_poll(tmp_path: Path) -> None:
    """Five jobs followed together: one qstat call per poll (OpenPBS's JSON answers for the
    first of several ids only, so the query names none and picks the jobs from the answer)."""
    from abcitrain.batch.store import JobStore
    from abcitrain.service import following
    from abcitrain.transport import LocalTransport, RunResult

    class Counting(LocalTransport):
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def run(self, argv: Any, cwd: str | None = None,
                timeout: float | None = 120) -> RunResult:
            self.calls.append(list(argv))
            return super().run(argv, cwd=cwd, timeout=timeout)

    jobs = [submitted(_spec(tmp_path, f"many{i}", command=["sleep", "30"])) for i in range(5)]
    try:
        store = JobStore.existing()
        tr = Counting()
        records = [r for r in following.refresh(store.recent(), store, tr) if r.job_id in jobs]
        assert sorted(r.job_id for r in records) == sorted(jobs)
        assert all(r.state in ("PENDING", "RUNNING") for r in records), records
        assert [c[0] for c in tr.calls] == ["qstat"], tr.calls
    finally:
        cli("cancel", *jobs)


def test_a_job_past_its_walltime_is_killed_and_timed_out(tmp_path: Path) -> None:
    job = submitted(_spec(tmp_path, "overrun", walltime="0:00:05", command=["sleep", "300"]))
    # PBS's mom checks walltime every $check_poll_time (120 s by default)
    row: Any = wait_for(lambda: ended(job), 300, "the walltime kill")
    assert row["state"] == "TIMEOUT", row
    charge = _charge(job)
    assert charge["elapsed_s"] is not None and charge["elapsed_s"] >= 5, charge


def test_an_array_with_a_limit_runs_at_most_that_many_tasks_at_once(tmp_path: Path) -> None:
    """max_concurrent: PBS's max_run_subjobs (each task notes when it ran; none overlap)."""
    job = submitted(_spec(tmp_path, "limited", array="1-3", max_concurrent=1, command=[
        "bash", "-c", 'echo "$(date +%s.%N) start" > span.$ABCITRAIN_ARRAY_INDEX; sleep 2; '
        'echo "$(date +%s.%N) end" >> span.$ABCITRAIN_ARRAY_INDEX']))
    assert str(_qstat(job).get("max_run_subjobs")) == "1"
    row: Any = wait_for(lambda: ended(job), 240, "the limited array")
    assert row["state"] == "COMPLETED", row
    spans = sorted(tuple(float(line.split()[0]) for line in (tmp_path / f"span.{i}")
                         .read_text().splitlines()) for i in (1, 2, 3))
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans


USER_MODULE = """
def add(a, b):
    return a + b

def fail(message):
    raise ValueError(message)
"""


def test_python_functions_run_as_pbs_jobs_through_submitit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """submitit's executor API through abcitrain's plugin, on PBS: a call, an array (one PBS
    array job), and a failure that comes back as the function's own exception."""
    import importlib
    import sys

    import submitit

    (tmp_path / "pbsuser.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "pbsuser", raising=False)
    user = importlib.import_module("pbsuser")
    ex = submitit.AutoExecutor(str(tmp_path / "fn"), cluster="abcitrain",
                               abcitrain_cluster="pbs-test")
    ex.update_parameters(timeout_min=10, abcitrain_resource="rt_HF",
                         abcitrain_group="gaa50000")
    assert ex.submit(user.add, 2, 3).result() == 5
    tasks = ex.map_array(user.add, [1, 2], [10, 20])
    assert len({t.job_id.rsplit("_", 1)[0] for t in tasks}) == 1
    assert [t.result() for t in tasks] == [11, 22]
    error = ex.submit(user.fail, "on pbs").exception()
    assert error is not None and "ValueError: on pbs" in str(error)


def test_a_laptop_submits_follows_cancels_and_reads_logs_over_ssh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ssh mode onto the PBS host (openpbs-up.sh's sshd on pbshost, its sessions with PBS's
    commands on PATH as ABCI's login nodes have): the project uploaded, qsub there, the job
    followed and its log read back, a held one cancelled; nothing of PBS's runs here."""
    run = Path("/run/abcitrain-openpbs-ssh")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host pbslogin\n  HostName pbshost\n  Port 22\n  User root\n"
                      f"  IdentityFile {run / 'id'}\n  IdentitiesOnly yes\n"
                      f"  UserKnownHostsFile {run / 'known_hosts'}\n")
    monkeypatch.setenv("ABCITRAIN_SSH_CONFIG", str(config))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")      # no PBS client here
    project = tmp_path / "laptop" / "proj"
    (project / ".abcitrain" / "clusters").mkdir(parents=True)
    (project / "in.txt").write_text("from the laptop\n")
    there = tmp_path / "login-home" / "work"
    (project / ".abcitrain" / "clusters" / "pbs-test.yaml").write_text(yaml.safe_dump(
        {"login": {"ssh": "pbslogin", "workdir": str(there), "mode": "ssh"}}))
    monkeypatch.chdir(project)
    spec = _spec(project, "overssh", command=["bash", "-c", 'cat in.txt; echo "on $(hostname)"'])
    out = cli("submit", spec).output
    assert "uploaded" in out, out
    job = next(ln.split()[3] for ln in out.splitlines() if ln.startswith("submitted "))
    assert job.endswith(".pbshost"), job
    row: Any = wait_for(lambda: ended(job), 120, f"PBS job {job} over ssh")
    assert (row["state"], row["exit_code"]) == ("COMPLETED", 0), row
    log = cli("logs", job).output
    assert "from the laptop" in log and "on pbshost" in log, log
    held = submitted(spec, "--hold")
    wait_for(lambda: status_row(held)["state"] == "HELD", 60, "held job over ssh")
    cli("cancel", held)
    row = wait_for(lambda: ended(held), 120, f"cancelled {held} over ssh")
    assert row["state"] == "CANCELLED", row


def test_a_job_the_server_has_forgotten_is_unknown_and_never_settled(tmp_path: Path) -> None:
    """A job whose history PBS no longer keeps (purged here with `qdel -x`; on a site, after
    job_history_duration): `status` says PBS no longer knows it, nothing is settled as if it
    had ended, and the estimate stays the only charge."""
    job = submitted(_spec(tmp_path, "purged", command=["true"]), "--hold")
    wait_for(lambda: status_row(job)["state"] == "HELD", 60, "held job")
    subprocess.run([f"{PBS_BIN}/qdel", "-x", "-W", "force", job], check=True)
    wait_for(lambda: subprocess.run([f"{PBS_BIN}/qstat", "-x", job], capture_output=True,
                                    check=False).returncode != 0, 60, "PBS to forget the job")
    # the profile's poll interval (0.5 s) may still serve the last answer: ask until it is new
    row: Any = wait_for(lambda: (r := status_row(job))["state"] != "HELD" and r, 30,
                        "status to ask PBS again")
    assert row["state"] == "UNKNOWN", row
    assert "PBS no longer knows this job" in row["detail"], row
    charge = _charge(job)
    assert charge["actual_e4"] is None and charge["estimate_e4"] > 0, charge
