"""The embedded `local` cluster: real background processes on this machine."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import cli, wait_for

SHOW_ENV = ('echo "job=$ABCITRAIN_JOB_ID name=$ABCITRAIN_JOB_NAME index=[$ABCITRAIN_ARRAY_INDEX]'
            ' nodes=$ABCITRAIN_NNODES first=$ABCITRAIN_MASTER_ADDR gpus=$ABCITRAIN_GPUS_PER_NODE'
            ' hosts=$(cat "$ABCITRAIN_NODEFILE") msg=$MSG"')


def _spec(tmp_path: Path, name: str, **fields: Any) -> str:
    data = {"name": name, "cluster": "local", "resource": "cpu", "walltime": "0:05:00",
            "command": ["bash", "-c", SHOW_ENV], "env": {"MSG": "hi there"}, **fields}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _submit(spec: str, started: list[str], *args: str) -> str:
    out = cli("submit", spec, *args).output
    job_id = out.split()[3]
    started.append(job_id)
    return job_id


def _state(job_id: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = json.loads(cli("status", job_id, "--json").output)
    return rows[0]


def _ended(job_id: str) -> dict[str, Any] | None:
    row = _state(job_id)
    return row if row["state"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT") else None


def test_job_runs_with_a_scheduler_like_environment(tmp_path: Path,
                                                     local_jobs: list[str]) -> None:
    job = _submit(_spec(tmp_path, "hello"), local_jobs)
    row: Any = wait_for(lambda: _ended(job), 30, "local job to end")
    assert row["state"] == "COMPLETED" and row["exit_code"] == 0
    log = cli("logs", job).output
    assert f"job={job} name=hello index=[] nodes=1 first=localhost gpus=0 hosts=localhost " \
           "msg=hi there" in log
    assert cli("logs", job, "--path").output.strip() == str(tmp_path / f"hello.o{job}")
    table = cli("status").output
    assert "hello" in table and "COMPLETED" in table


def test_array_tasks_each_get_their_index_and_output(tmp_path: Path,
                                                      local_jobs: list[str]) -> None:
    job = _submit(_spec(tmp_path, "arr", array="2-6:2", output="out/{name}-{job_id}-"
                        "{array_index}.log"), local_jobs)
    wait_for(lambda: _ended(job), 30, "array to end")
    for index in (2, 4, 6):
        assert f"index=[{index}]" in cli("logs", job, "--task", str(index)).output
    assert (tmp_path / "out" / f"arr-{job}-4.log").is_file()
    result = cli("logs", job, ok=None)
    assert result.exit_code == 2 and "pass --task N" in result.output
    result = cli("logs", job, "--task", "3", ok=None)     # 2-6:2 has no task 3
    assert result.exit_code == 2 and "there is no task 3" in result.output


def test_logs_say_what_is_wrong_not_not_started(tmp_path: Path,
                                               local_jobs: list[str]) -> None:
    job = _submit(_spec(tmp_path, "plain"), local_jobs)
    wait_for(lambda: _ended(job), 30, "local job to end")
    result = cli("logs", job, "--task", "1", ok=None)
    assert result.exit_code == 2 and "not an array job" in result.output
    (tmp_path / f"plain.o{job}").unlink()
    result = cli("logs", job, ok=None)
    assert result.exit_code == 1 and "ended COMPLETED" in result.output
    assert "deleted or moved" in result.output and "(yet)" not in result.output
    result = cli("cancel", job, ok=None)           # too late: said plainly
    assert result.exit_code == 1 and "already ended" in result.output
    assert "abcitrain's local scheduler" in result.output and "python" not in result.output


def test_dependency_waits_and_afterok_never_runs_after_failure(
        tmp_path: Path, local_jobs: list[str]) -> None:
    first = _submit(_spec(tmp_path, "first", command=["bash", "-c", "sleep 2; exit 3"]),
                    local_jobs)
    after_any = _submit(_spec(tmp_path, "anyway", depends_on=[first], dependency="afterany"),
                        local_jobs)
    after_ok = _submit(_spec(tmp_path, "only-ok", depends_on=[first]), local_jobs)
    assert _state(after_any)["state"] == "PENDING"
    ok_row: Any = wait_for(lambda: _ended(after_ok), 30)
    any_row: Any = wait_for(lambda: _ended(after_any), 30)
    assert _state(first)["state"] == "FAILED" and _state(first)["exit_code"] == 3
    assert any_row["state"] == "COMPLETED"
    assert ok_row["state"] == "CANCELLED" and f"dependency {first} ended FAILED" in \
        ok_row["detail"]


def test_cancel_stops_a_running_job(tmp_path: Path, local_jobs: list[str]) -> None:
    job = _submit(_spec(tmp_path, "sleeper", command=["bash", "-c", "echo started; sleep 60"]),
                  local_jobs)
    wait_for(lambda: "started" in (tmp_path / f"sleeper.o{job}").read_text()
             if (tmp_path / f"sleeper.o{job}").exists() else False, 20)
    assert "cancel requested" in cli("cancel", job).output
    row: Any = wait_for(lambda: _ended(job), 30)
    assert row["state"] == "CANCELLED"
    again = cli("cancel", job, ok=None)
    assert again.exit_code == 1 and "already ended (CANCELLED)" in again.output
    assert "What it means: the job had already ended" in again.output


def test_walltime_is_enforced(tmp_path: Path, local_jobs: list[str]) -> None:
    job = _submit(_spec(tmp_path, "slow", walltime=2, command=["sleep", "30"]), local_jobs)
    row: Any = wait_for(lambda: _ended(job), 30)
    assert row["state"] == "TIMEOUT"


def test_each_task_has_its_own_tmpdir_removed_when_it_ends(tmp_path: Path,
                                                            local_jobs: list[str]) -> None:
    """Like a cluster's per-job scratch: what a task leaves in $TMPDIR (the job script's
    node file, a launcher's folder) is gone after it, a walltime kill included."""
    fill = ('echo "tmp=$TMPDIR nodes=$ABCITRAIN_NODEFILE"; touch "$TMPDIR/left-behind"; '
            'mkdir "$TMPDIR/launch"; sleep 30')
    job = _submit(_spec(tmp_path, "scratch", walltime=3, array="1-2",
                        command=["bash", "-c", fill]), local_jobs)
    row: Any = wait_for(lambda: _ended(job), 60)
    assert row["state"] == "TIMEOUT"
    seen = []
    for task in (1, 2):
        log = cli("logs", job, "--task", str(task)).output
        tmp = log.split("tmp=")[1].split()[0]
        assert Path(tmp).name.startswith(f"abcitrain-{job}-") and not Path(tmp).exists()
        seen.append(tmp)
    assert seen[0] != seen[1]                                # one per task


def test_a_job_submitted_from_inside_a_task_gets_scratch_of_its_own(
        tmp_path: Path, local_jobs: list[str]) -> None:
    """A job submitted from inside a task (a walltime chain's next job) inherits that task's
    TMPDIR; its own scratch must not lie inside it: the first task's goes when it ends."""
    inner = _spec(tmp_path, "inner", command=[
        "bash", "-c", 'sleep 2; echo "tmp=$TMPDIR"; touch "$TMPDIR/x" && echo wrote'])
    submit = f'echo "tmp=$TMPDIR"; exec {shlex.quote(sys.executable)} -m abcitrain submit ' \
             f'{shlex.quote(inner)}'
    outer = _submit(_spec(tmp_path, "outer", command=["bash", "-c", submit]), local_jobs)
    row: Any = wait_for(lambda: _ended(outer), 60, "the outer job to end")
    outer_log = cli("logs", outer).output
    assert row["state"] == "COMPLETED", outer_log
    inner_id = outer_log.split("submitted")[1].split()[2]
    local_jobs.append(inner_id)
    row = wait_for(lambda: _ended(inner_id), 60, "the inner job to end")
    inner_log = cli("logs", inner_id).output
    assert row["state"] == "COMPLETED" and "wrote" in inner_log, inner_log
    outer_tmp = Path(outer_log.split("tmp=")[1].split()[0])
    inner_tmp = Path(inner_log.split("tmp=")[1].split()[0])
    assert inner_tmp.name.startswith(f"abcitrain-{inner_id}-")
    assert inner_tmp.parent == outer_tmp.parent and not inner_tmp.exists()


def test_unknown_job_id_is_a_clear_error() -> None:
    result = cli("status", "424242", ok=None)
    assert result.exit_code == 2 and "did not submit a job with this id" in result.output


def test_what_qsub_and_sbatch_users_script_against(tmp_path: Path,
                                                   local_jobs: list[str]) -> None:
    """--parsable prints the id alone, --json the submission; --wait exits with the job's
    own exit status, as srun does; check and clusters speak JSON too."""
    job = cli("submit", "--parsable", _spec(tmp_path, "quiet")).output.strip()
    local_jobs.append(job)
    assert job.isdigit()
    data = json.loads(cli("submit", "--json", _spec(tmp_path, "js")).output)
    local_jobs.append(data["job_id"])
    assert data["cluster"] == "local" and data["name"] == "js" and data["command"][-1] \
        .endswith(".sh") and data["unrecorded"] == []
    result = cli("submit", "--wait", _spec(tmp_path, "three", command=[
        "bash", "-c", "exit 3"]), ok=None)
    local_jobs.append(result.output.split()[3])
    assert result.exit_code == 3 and "ended FAILED (exit 3)" in result.output
    ok = json.loads(cli("check", "--json", _spec(tmp_path, "fine")).output)
    assert ok["ok"] is True and ok["errors"] == []
    bad = cli("check", "--json", _spec(tmp_path, "bad", nodes=5), ok=None)
    assert bad.exit_code == 2
    report = json.loads(bad.output)
    assert report["ok"] is False and [e["where"] for e in report["errors"]] == ["nodes"]
    names = [c["name"] for c in json.loads(cli("clusters", "--json").output)]
    assert {"abci3", "pbs", "local", "slurm"} <= set(names)


@pytest.mark.parametrize(("state", "code", "status"), [
    ("COMPLETED", 0, 0), ("FAILED", 3, 3), ("TIMEOUT", None, 1), ("CANCELLED", 271, 1),
    ("CANCELLED", None, 1), ("FAILED", -29, 1)])
def test_wait_status_is_the_jobs_own(state: str, code: int | None, status: int) -> None:
    from abcitrain.cli.following import wait_status

    assert wait_status(state, code) == status


def test_command_line_overrides_are_validated_like_the_file(tmp_path: Path,
                                                            local_jobs: list[str]) -> None:
    spec = _spec(tmp_path, "over")
    job = _submit(spec, local_jobs, "--set", "env.MSG=from the command line",
                  "--walltime", "1:30")
    wait_for(lambda: _ended(job), 30, "local job to end")
    assert "msg=from the command line" in cli("logs", job).output
    script = cli("render", spec, "--walltime", "1:30").output
    assert "#LOCAL --walltime 5400" in script                # 1:30 is ninety minutes
    bad = cli("check", spec, "--nodes", "5", ok=None)
    assert bad.exit_code == 2 and "nodes" in bad.output
    bad = cli("check", spec, "--set", "nodez=2", "--set", "oops", ok=None)
    assert bad.exit_code == 2 and "oops" in bad.output
    bad = cli("check", spec, "--set", "nodez=2", ok=None)
    assert bad.exit_code == 2 and "nodez: unknown key" in bad.output


def test_check_refuses_what_the_local_scheduler_would(tmp_path: Path) -> None:
    """A #LOCAL line the local scheduler's own parser refuses is refused by check already,
    and the two option lists are the same."""
    from abcitrain.backends.local import OPTIONS
    from abcitrain.localsched.commands import _options

    parsed = {a.option_strings[0] for a in _options()._actions if a.option_strings}
    assert parsed == set(OPTIONS)
    bad = cli("check", _spec(tmp_path, "odd", extra_directives=["--frobnicate 1"]), ok=None)
    assert bad.exit_code == 2 and "knows only --name" in bad.output
    assert not (tmp_path / "odd.o1").exists()


def test_a_missing_or_looping_workdir_is_refused_by_check(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for workdir, words in (("nowhere", "does not exist"), ("loop", "symlink loop")):
        bad = cli("check", _spec(tmp_path, "w", workdir=workdir), ok=None)
        assert bad.exit_code == 2 and words in bad.output, bad.output
    (tmp_path / "there").mkdir()
    cli("check", _spec(tmp_path, "w", workdir="there"))


def test_setup_steps_run_before_the_command(tmp_path: Path, local_jobs: list[str]) -> None:
    """A virtualenv to activate, ulimits and argv steps, rendered for the local scheduler and
    run for real; module paths and purge come before module load (rendered)."""
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "activate").write_text("export VENV_ACTIVE=yes\n")
    job = _submit(_spec(tmp_path, "setup", setup={
        "activate": "venv", "ulimit": {"n": 512},
        "run": [["mkdir", "-p", "${ABCITRAIN_LOCALDIR}/abcitrain-setup-test"],
                ["touch", "setup-ran"]]},
        command=["bash", "-c", 'echo "venv=$VENV_ACTIVE nofile=$(ulimit -n)"']), local_jobs)
    row: Any = wait_for(lambda: _ended(job), 30, "local job to end")
    assert row["state"] == "COMPLETED", row
    assert "venv=yes nofile=512" in cli("logs", job).output
    assert (tmp_path / "setup-ran").exists()
    script = cli("render", _spec(tmp_path, "mods", modules=["cuda/12.6"], setup={
        "module_use": ["/groups/x/modules"], "module_purge": True})).output
    lines = script.splitlines()
    assert lines.index("module use /groups/x/modules") < lines.index("module purge") < \
        lines.index("module load cuda/12.6")
    for bad, where in (({"run": ["echo hi"]}, "setup.run.0"), ({"ulimit": {"z": 1}}, "setup"),
                       ({"run": [["echo"]], "colour": 1}, "setup.colour")):
        result = cli("check", _spec(tmp_path, "bad", setup=bad), ok=None)
        assert result.exit_code == 2 and where in result.output, result.output


def test_status_shows_every_cluster_that_answers_and_one_line_on_one_that_cannot(
        tmp_path: Path, local_jobs: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A job on abci3 (no PBS here: its qsub is not PBS's, or it is reached over ssh to a
    host that does not exist) next to a real local job: `status` used to show nothing."""
    import json
    import time

    from abcitrain.batch.store import JobRecord, JobStore

    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.yaml").write_text(
        "name: here\ncluster: local\nresource: cpu\nwalltime: '0:05:00'\ncommand: ['true']\n")
    out = cli("submit", "job.yaml").output
    local = out.split()[3]
    local_jobs.append(local)
    JobStore().add(JobRecord(
        cluster="abci3", job_id="123.pbs1", scheduler="pbs", name="away",
        submitted_at=time.time(), submit_dir=str(tmp_path), script_path="x.sh",
        output="away.o123", array_tasks=None, state="PENDING", exit_code=None,
        elapsed_s=None, detail="", cancel_requested=False, spec={}))

    def rows() -> dict[str, dict[str, object]] | None:
        result = cli("status", "--json", "--fresh")
        found = {r["job_id"]: r for r in json.loads(result.stdout)}
        return found if found[local]["state"] == "COMPLETED" else None

    found = wait_for(rows, 60, "the local job to complete")
    assert found["123.pbs1"]["state"] == "PENDING"           # last seen, kept
    text = cli("status", "--fresh")
    assert "warning: abci3 could not be asked (" in text.stderr, text.stderr
    assert text.stderr.count("\n") == 1 and "Traceback" not in text.output
    assert "here" in text.stdout and "away" in text.stdout
