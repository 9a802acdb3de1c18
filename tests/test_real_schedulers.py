"""The same job specs on REAL Slurm and REAL Son of Grid Engine clusters on this machine.

tests/infra starts them (see conftest.py): Slurm with 2 nodes, 4 fake GPUs each and slurmdbd
for sacct; Grid Engine with this host plus 2 hosts in network namespaces.
"""

from __future__ import annotations

import math
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import cli, ended, status_row, submitted, wait_for

from abcitrain.points.ledger import Ledger

RESOURCE = {"slurm-test": "gpu", "sge-test": "rt_F"}
SHOW = ('echo "job=$ABCITRAIN_JOB_ID index=[$ABCITRAIN_ARRAY_INDEX] nnodes=$ABCITRAIN_NNODES '
        'gpus=$ABCITRAIN_GPUS_PER_NODE msg=$MSG"; '
        'echo "hosts: $(paste -sd, "$ABCITRAIN_NODEFILE")"')


@pytest.fixture(params=["slurm-test", "sge-test"])
def cluster(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue("slurm_cluster" if request.param == "slurm-test" else "sge_cluster")
    return str(request.param)


def _spec(tmp_path: Path, cluster: str, name: str, **fields: Any) -> str:
    data = {"name": name, "cluster": cluster, "resource": RESOURCE[cluster],
            "walltime": "0:10:00", "env": {"MSG": "it's $(not) expanded"},
            "command": ["bash", "-c", SHOW], **fields}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)





def test_multinode_job_runs_to_completion(cluster: str, tmp_path: Path) -> None:
    job = submitted(_spec(tmp_path, cluster, "multi", nodes=2))
    row: Any = wait_for(lambda: ended(job), 90, f"{cluster} job {job}")
    assert row["state"] == "COMPLETED" and row["exit_code"] == 0, row
    log = cli("logs", job).output
    assert f"job={job} index=[] nnodes=2 gpus=4 msg=it's $(not) expanded" in log
    hosts = log.split("hosts: ")[1].split()[0].split(",")
    assert len(set(hosts)) == 2, log       # two distinct (fake) nodes
    if cluster == "slurm-test":
        assert hosts == ["n1", "n2"]
    else:
        # this host (Grid Engine's own name for it) and the namespace hosts sgenode1/2
        here = subprocess.run(["/usr/lib/gridengine/gethostname", "-name"], capture_output=True,
                              text=True, check=True).stdout.strip()
        assert set(hosts) <= {here, "sgenode1", "sgenode2"}, hosts


#: A shell body as real users write one: a continued line, a computed value, a loop, a
#: heredoc, an unset variable read, and its own exit status.
BODY = """\
#!/bin/bash
host=$(hostname)
stem=${ABCITRAIN_JOB_NAME%%.*}
for step in 1 2; do
  echo "step $step of $stem ${NOT_SET_ANYWHERE:-unset}"
done
cat <<EOF | \\
  tr a-z A-Z
body on $host
EOF
exit 5
"""


def test_a_shell_body_runs_with_its_own_exit_status_logs_and_points(
        cluster: str, tmp_path: Path) -> None:
    data = {"name": "shellbody", "cluster": cluster, "resource": RESOURCE[cluster],
            "walltime": "0:10:00", "script": BODY}
    path = tmp_path / "shellbody.yaml"
    path.write_text(yaml.safe_dump(data))
    job = submitted(str(path))
    row: Any = wait_for(lambda: ended(job), 90, f"{cluster} shell body {job}")
    assert (row["state"], row["exit_code"]) == ("FAILED", 5), row
    log = cli("logs", job).output
    assert "step 1 of shellbody unset" in log and "step 2 of shellbody unset" in log
    assert "BODY ON " in log
    charge = {r["ref"]: r for r in Ledger().rows()}[job]
    assert charge["actual_e4"] is not None and charge["actual_e4"] > 0, charge


def test_array_job(cluster: str, tmp_path: Path) -> None:
    job = submitted(_spec(tmp_path, cluster, "arr", array="1-3"))
    row: Any = wait_for(lambda: ended(job), 90, "array")
    assert row["state"] == "COMPLETED", row
    for index in (1, 2, 3):
        assert f"job={job} index=[{index}]" in cli("logs", job, "--task", str(index)).output


def test_output_and_error_go_to_folders_that_did_not_exist(cluster: str,
                                                           tmp_path: Path) -> None:
    """Log folders named by the spec (as imported scripts' ``-o logs/...`` do) are made
    before the scheduler has the job: neither scheduler makes them (Slurm fails the job
    with no output at all, exit 0:53; Grid Engine holds it in error)."""
    job = submitted(_spec(tmp_path, cluster, "inlogs", output="logs/{name}.o{job_id}",
                          error="logs/err/{name}.e{job_id}",
                          command=["bash", "-c", "echo to-out; echo to-err >&2"]))
    row: Any = wait_for(lambda: ended(job), 90, f"{cluster} job {job}")
    assert (row["state"], row["exit_code"]) == ("COMPLETED", 0), row
    assert (tmp_path / "logs" / f"inlogs.o{job}").read_text().strip() == "to-out"
    assert "to-err" in (tmp_path / "logs" / "err" / f"inlogs.e{job}").read_text()
    assert "to-out" in cli("logs", job).output


def test_grid_engine_writes_its_own_name_into_an_output_folder(sge_cluster: None,
                                                                tmp_path: Path) -> None:
    """An imported script's ``-o logs/``: Grid Engine writes NAME.oJOBID there (.TASK for an
    array's task), and `abcitrain logs` reads that file."""
    job = submitted(_spec(tmp_path, "sge-test", "folded", output="logs/", array="1-2",
                          command=["bash", "-c", "echo task-$ABCITRAIN_ARRAY_INDEX"]))
    row: Any = wait_for(lambda: ended(job), 90, f"sge job {job}")
    assert row["state"] == "COMPLETED", row
    for index in (1, 2):
        assert (tmp_path / "logs" / f"folded.o{job}.{index}").read_text().strip() \
            == f"task-{index}"
        assert f"task-{index}" in cli("logs", job, "--task", str(index)).output


def test_a_job_whose_log_folder_is_gone_when_it_starts_says_why_it_failed(
        slurm_cluster: None, tmp_path: Path) -> None:
    """The folder made at submission is deleted while the job is held: Slurm fails it
    before its first line, ExitCode 0:53 and no output. The status says so rather than
    "FAILED, exit 0"."""
    job = submitted(_spec(tmp_path, "slurm-test", "nolog", output="logs/{name}.o{job_id}",
                          command=["true"]), "--hold")
    assert (tmp_path / "logs").is_dir()
    wait_for(lambda: status_row(job)["state"] == "HELD", 60, "job to show as held")
    (tmp_path / "logs").rmdir()
    cli("release", job)
    row: Any = wait_for(lambda: ended(job), 90, f"slurm job {job}")
    assert row["state"] == "FAILED", row
    assert "sacct ExitCode 0:53" in row["detail"], row
    assert "could not open the job's output" in row["detail"], row
    assert "could not open the job's output" in cli("status", job).output


def test_dependency_starts_after_the_first_job(cluster: str, tmp_path: Path) -> None:
    first = submitted(_spec(tmp_path, cluster, "first",
                          command=["bash", "-c", "sleep 3; touch first-done"]))
    second = submitted(_spec(tmp_path, cluster, "second", depends_on=[first],
                           dependency="afterany",
                           command=["bash", "-c", "test -e first-done && echo saw-first"]))
    row: Any = wait_for(lambda: ended(second), 120, "dependent job")
    assert row["state"] == "COMPLETED", row
    assert "saw-first" in cli("logs", second).output


def test_cancel(cluster: str, tmp_path: Path) -> None:
    job = submitted(_spec(tmp_path, cluster, "sleeper", command=["sleep", "120"]))
    waiting = submitted(_spec(tmp_path, cluster, "waiting", depends_on=[job]))
    wait_for(lambda: status_row(job)["state"] == "RUNNING", 60, "job to start")
    cli("cancel", waiting)                       # still waiting on its dependency
    cli("cancel", job)
    row: Any = wait_for(lambda: ended(job), 90, "cancelled job")
    assert row["state"] == "CANCELLED", row
    row = wait_for(lambda: ended(waiting), 90, "cancelled waiting job")
    assert row["state"] == "CANCELLED", row
    charges = {r["ref"]: r for r in Ledger().rows()}
    # the running job is charged the seconds it ran; the one that never started, nothing
    assert charges[job]["actual_e4"] is not None and charges[job]["actual_e4"] > 0
    assert charges[waiting]["actual_e4"] == 0, charges[waiting]


def _task_seconds(cluster: str, job: str) -> list[int]:
    """Each array task's run time as the scheduler's accounting prints it, read here
    without abcitrain's parsers."""
    if cluster == "slurm-test":
        out = subprocess.run(["sacct", "-n", "-P", "-X", "-j", job, "--format=ElapsedRaw"],
                             capture_output=True, text=True, check=True).stdout
        return [int(x) for x in out.split()]
    out = subprocess.run(["qacct", "-j", job], capture_output=True, text=True,
                         check=True).stdout
    return [int(float(line.split()[1].rstrip("s"))) for line in out.splitlines()
            if line.startswith("ru_wallclock")]


def _points_e4(seconds: int, nodes: int = 1) -> int:
    # ABCI's formula at the test profiles' 1.2 points/h, half-up to 4 decimals
    exact = Fraction(12, 10) * nodes * max(Fraction(seconds), Fraction(18, 10)) / 3600
    return math.floor(exact * 10000 + Fraction(1, 2))


def test_array_with_a_failed_task_is_failed_and_every_task_is_charged(
        cluster: str, tmp_path: Path) -> None:
    job = submitted(_spec(tmp_path, cluster, "arrfail", array="1-3", command=[
        "bash", "-c", '[ "$ABCITRAIN_ARRAY_INDEX" != 2 ] || exit 3']))
    row: Any = wait_for(lambda: ended(job), 120, "array to end")
    assert row["state"] == "FAILED" and row["exit_code"] == 3, row
    assert "1 of 3 tasks did not complete: task 2 FAILED (exit 3)" in row["detail"], row
    seconds = wait_for(lambda: (lambda s: s if len(s) == 3 else None)(
        _task_seconds(cluster, job)), 60, "three accounting records")
    # the tasks run for well under the 1.8 s minimum, so each is charged the minimum
    assert all(s < 1.8 for s in seconds), seconds
    [charge] = [r for r in Ledger().rows() if r["ref"] == job]
    assert charge["actual_e4"] == sum(_points_e4(s) for s in seconds) == 3 * 6, charge
    assert charge["state"] == "FAILED"


def test_walltime_kill_is_timeout_in_accounting(cluster: str, tmp_path: Path) -> None:
    walltime = "0:01:00" if cluster == "slurm-test" else 5     # Slurm counts whole minutes
    job = submitted(_spec(tmp_path, cluster, "slow", walltime=walltime, command=["sleep", "300"]))
    row: Any = wait_for(lambda: ended(job), 150, "walltime kill")
    assert row["state"] == "TIMEOUT", row


def test_finished_job_is_confirmed_from_accounting(cluster: str, tmp_path: Path) -> None:
    job = submitted(_spec(tmp_path, cluster, "acct", command=["bash", "-c", "exit 3"]))
    # wait until the queue has forgotten the job (Slurm: MinJobAge=10 s; Grid Engine: at once)
    queue = (["squeue", "-h", "--states=all", "-j", job] if cluster == "slurm-test"
             else ["qstat", "-j", job])
    wait_for(lambda: subprocess.run(queue, capture_output=True, text=True).stdout.strip() == ""
             and True, 120, "job to leave the queue")
    row: Any = wait_for(lambda: ended(job), 60, "accounting record")
    assert row["state"] == "FAILED" and row["exit_code"] == 3, row


def test_points_estimated_at_submit_and_settled_from_accounting(cluster: str,
                                                                tmp_path: Path) -> None:
    out = cli("submit", _spec(tmp_path, cluster, "charged", nodes=2,
                              command=["sleep", "3"])).output
    job = out.split()[3]
    # 2 nodes x 10 min at 1.2 points/h (the test profiles' tariff) = 0.4 points at most
    assert "maximum charge: 0.4000 points (2 x" in out
    wait_for(lambda: ended(job), 90, "job to end")
    [row] = [r for r in Ledger().rows() if r["ref"] == job]
    # the elapsed time comes from the scheduler's accounting (sacct ElapsedRaw / qacct)
    assert row["actual_e4"] is not None and 3 <= row["elapsed_s"] < 60, row
    # ABCI's formula written out (guide: coeff x count x max(elapsed, 1.8 s) / 3600, rounded
    # half-up to 4 decimals), in ten-thousandths, independently of abcitrain's round_points
    exact = Fraction(12, 10) * 2 * max(Fraction(row["elapsed_s"]), Fraction(18, 10)) / 3600
    assert row["actual_e4"] == math.floor(exact * 10000 + Fraction(1, 2))
    assert row["estimate_e4"] == 4000


def test_scheduler_refusal_is_explained_without_traceback(cluster: str, tmp_path: Path) -> None:
    if cluster == "slurm-test":
        spec = _spec(tmp_path, cluster, "toobig", resource="toobig")
        words, meaning = "Requested node configuration is not available", "no node of that"
    else:
        # ABCI 2.0's profile passes `-g group`; a stock Grid Engine has no such option.
        # (abci2 itself is retired: a site profile extending it, as its YAML says, lives on)
        clusters = tmp_path / ".abcitrain" / "clusters"
        clusters.mkdir(parents=True)
        (clusters / "abci2like.yaml").write_text("extends: abci2\nretired: null\n")
        spec = _spec(tmp_path, "sge-test", "abci2style")
        data = yaml.safe_load(Path(spec).read_text())
        data.update(cluster="abci2like", resource="rt_F", group="gaa50000")
        Path(spec).write_text(yaml.safe_dump(data))
        words, meaning = 'invalid option argument "-g"', "stock Grid Engine"
    result = cli("submit", spec, ok=None)
    assert result.exit_code == 1, result.output
    assert words in result.output and "What it means:" in result.output
    assert meaning in result.output and "Traceback" not in result.output
    assert "no jobs recorded" in cli("status").output


def test_son_of_grid_engine_qacct_imports(sge_cluster: object, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Real qacct output of Son of Grid Engine (ctime dates: `Mon Nov 30 16:41:37 2026`)
    prices into a fresh ledger, every record."""
    job = submitted(_spec(tmp_path, "sge-test", "acctimport", command=["true"]))
    wait_for(lambda: ended(job), 90, "job to end")
    text = wait_for(lambda: subprocess.run(["qacct", "-j", job], capture_output=True,
                                           text=True).stdout, 60, "qacct record")
    assert isinstance(text, str) and "qsub_time" in text
    (tmp_path / "qacct.txt").write_text(text)
    monkeypatch.setenv("ABCITRAIN_LEDGER", str(tmp_path / "imported.db"))
    out = cli("points", "import", str(tmp_path / "qacct.txt"), "--format", "qacct",
              "--cluster", "sge-test").output
    assert "read 1 records, imported 1 new" in out and "skipped" not in out, out
    [row] = Ledger().rows()
    assert row["ref"] == job and row["actual_e4"] == _points_e4(int(row["elapsed_s"])), row


def test_a_held_job_waits_until_released(cluster: str, tmp_path: Path) -> None:
    job = submitted(_spec(tmp_path, cluster, "held", command=["true"]), "--hold")
    wait_for(lambda: status_row(job)["state"] == "HELD", 60, "job to show as held")
    cli("release", job)
    row: Any = wait_for(lambda: ended(job), 90, "released job to end")
    assert row["state"] == "COMPLETED", row


def test_job_time_variables_expand_in_the_running_job(cluster: str, tmp_path: Path) -> None:
    """${NAME} in env values, setup steps and command arguments is expanded by the job's
    shell (here abcitrain's own ABCITRAIN_LOCALDIR, the node-local disk, and the job id);
    $(...) is not; setup steps (a ulimit, a command) run before the command."""
    job = submitted(_spec(tmp_path, cluster, "jobvars", env={"CACHE": "${ABCITRAIN_LOCALDIR}/cache",
                                                           "LIT": "$${HOME} $(touch PWNED)"},
                        setup={"ulimit": {"n": 512},
                               "run": [["touch", "setup-ran-${ABCITRAIN_JOB_ID}"]]},
                        command=["bash", "-c",
                                 'echo "cache=$CACHE lit=$LIT nofile=$(ulimit -n) id=$1"', "x",
                                 "${ABCITRAIN_JOB_ID}"]))
    row: Any = wait_for(lambda: ended(job), 90, "job to end")
    assert row["state"] == "COMPLETED", row
    assert (tmp_path / f"setup-ran-{job}").exists()          # the setup step ran first
    log = cli("logs", job).output
    line = next(x for x in log.splitlines() if x.startswith("cache="))
    cache = line.split()[0].removeprefix("cache=")
    assert cache.endswith("/cache") and cache.startswith("/") and "$" not in cache, line
    assert "lit=${HOME} $(touch PWNED) nofile=512" in line and line.endswith(f"id={job}"), line
    assert not (tmp_path / "PWNED").exists()


def test_the_scheduler_names_the_job_a_script_made(cluster: str, tmp_path: Path) -> None:
    """The query a lost submission is resolved with (the script path is unique to each
    submission): the real scheduler's answer maps the recorded script to the job id."""
    from abcitrain.backends import get_backend
    from abcitrain.backends.base import Output
    from abcitrain.batch.store import JobStore
    from abcitrain.transport import LocalTransport

    job = submitted(_spec(tmp_path, cluster, "found", hold=True))
    try:
        record = JobStore().get(cluster, job)
        assert record is not None
        backend = get_backend("slurm" if cluster == "slurm-test" else "uge")
        argv = backend.submitted_argv()
        assert argv is not None
        result = LocalTransport().run(argv)
        assert result.returncode == 0, result.stderr
        found = backend.parse_submitted(Output(result.stdout, result.stderr, 0))
        assert found.get(record.script_path) == job, (record.script_path, found)
    finally:
        cli("cancel", job)
