"""``script:``: a job's body as shell text, kept byte for byte after abcitrain's prologue.

Rendered for every scheduler, checked by ``bash -n`` (at the body's own line numbers), run on
the local cluster (real jobs; the real Slurm and Grid Engine runs are in
tests/test_real_schedulers.py), in chains and sweeps.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import cli, wait_for

from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec
from abcitrain.errors import InputError
from abcitrain.points.ledger import Ledger

BODY = """\
# the user's own comment
set -u                      # theirs: abcitrain never sets it on a body
name=${ABCITRAIN_JOB_NAME:-none}
for word in "a b" c; do
  printf '[%s]\\n' "$word"
done
cat <<'EOF'
$literal `not run` \\ kept
EOF
result=$(echo computed | tr a-z A-Z)
echo "$result ${OPTIONAL:-default}" \\
  continued
exit 7
"""
CLUSTERS = {"local": "cpu", "abci3": "rt_HF", "abci2": "rt_F", "slurm": "gpu"}


def _spec(cluster: str = "local", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "body", "cluster": cluster, "resource": CLUSTERS[cluster],
                            "walltime": "0:05:00", "script": BODY}
    if cluster in ("abci3", "abci2"):
        data["group"] = "gaa50000"
    data.update(fields)
    return data


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
def test_the_body_follows_the_prologue_byte_for_byte(cluster: str) -> None:
    plan = plan_job(*parse_spec(_spec(cluster)))
    assert plan.errors == []
    head, sep, tail = plan.script.partition("set +euo pipefail\n")
    assert sep, "the body must run with bash's default options"
    assert tail == BODY + "\n" or tail == BODY
    assert "set -euo pipefail" in head                  # abcitrain's own lines stay strict
    done = subprocess.run(["bash", "-n"], input=plan.script, text=True, capture_output=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_exactly_one_of_command_and_script() -> None:
    with pytest.raises(InputError) as both:
        parse_spec(_spec(command=["true"]))
    assert "not both" in str(both.value)
    data = _spec()
    del data["script"]
    with pytest.raises(InputError) as neither:
        parse_spec(data)
    assert "script:" in str(neither.value) and "command" in str(neither.value)
    with pytest.raises(InputError) as empty:
        parse_spec(_spec(script="  \n"))
    assert "empty" in str(empty.value)
    with pytest.raises(InputError) as image:
        parse_spec(_spec(container={"image": "x.sif"}))
    assert "singularity exec" in str(image.value)


def test_check_and_render_name_the_bodys_own_line_of_a_syntax_error(tmp_path: Path) -> None:
    bad = "echo fine\nfor i in 1 2; do\n  echo $i\ndone done\n"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(_spec(script=bad)))
    for verb in ("check", "render"):
        result = cli(verb, "bad.yaml", ok=None)
        assert result.exit_code == 2, result.output
        assert "script (line 4): syntax error near unexpected token `done'" in result.output


def test_a_body_job_runs_on_the_local_cluster_with_its_exit_status_and_logs(
        tmp_path: Path, local_jobs: list[str]) -> None:
    (tmp_path / "body.yaml").write_text(yaml.safe_dump(_spec()))
    submitted = json.loads(cli("submit", "body.yaml", "--json").output)
    job = submitted["job_id"]
    local_jobs.append(job)

    def ended() -> dict[str, Any] | None:
        row: dict[str, Any] = json.loads(cli("status", job, "--json").output)[0]
        return row if row["state"] in ("COMPLETED", "FAILED") else None

    row: Any = wait_for(ended, 60, "the local body job")
    assert (row["state"], row["exit_code"]) == ("FAILED", 7), row
    log = cli("logs", job).output
    assert "[a b]\n[c]\n" in log
    assert "$literal `not run` \\ kept" in log
    assert "COMPUTED default continued" in log
    [charge] = [r for r in Ledger().rows() if r["ref"] == job]
    assert charge["actual_e4"] == 0 and charge["state"] == "FAILED"     # local is free


def test_a_chain_stage_body_marks_success_only_when_it_succeeds(tmp_path: Path) -> None:
    from abcitrain.batch.chain import linked, parse_chain

    chain = parse_chain({"name": "c", "cluster": "local", "resource": "cpu",
                         "walltime": "0:05:00",
                         "stages": [{"name": "one", "script": "echo one\nexit 3\n"},
                                    {"name": "two", "after": "afterok",
                                     "command": ["echo", "two"]}]})
    first = linked(chain, "c-1")[0]
    assert first.spec.chain is not None
    plan = plan_job(first.spec, first.profile)
    assert plan.errors == []
    marker = tmp_path / first.spec.chain.done
    env = {"PATH": "/usr/bin:/bin", "LOCAL_SUBMIT_DIR": str(tmp_path), "TMPDIR": str(tmp_path)}
    script = tmp_path / "one.sh"
    script.write_text(plan.script)
    done = subprocess.run(["bash", str(script)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 3 and "one" in done.stdout
    assert not marker.exists()                          # failed: no marker for stage two
    script.write_text(plan.script.replace("exit 3\n", "exit 0\n"))
    done = subprocess.run(["bash", str(script)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0 and marker.exists()


def test_a_sweep_gives_each_body_task_its_values(tmp_path: Path) -> None:
    sweep = {"grid": {"LR": ["1e-4", "3e-4"]}}
    plan = plan_job(*parse_spec(_spec(script='echo "lr=$LR"\n', sweep=sweep)))
    assert plan.errors == [] and plan.spec.array is not None
    script = tmp_path / "s.sh"
    script.write_text(plan.script)
    for index, value in ((1, "1e-4"), (2, "3e-4")):
        env = {"PATH": "/usr/bin:/bin", "LOCAL_SUBMIT_DIR": str(tmp_path),
               "LOCAL_ARRAY_INDEX": str(index), "TMPDIR": str(tmp_path)}
        out = subprocess.run(["bash", str(script)], env=env, cwd=tmp_path, text=True,
                             capture_output=True, check=True).stdout
        assert f"lr={value}" in out


@pytest.mark.parametrize(("cluster", "expect"), [
    ("abci3", []), ("abci2", ["-e $JOB_NAME.e$JOB_ID"]),
    ("slurm", ["--error=%x.e%j"]),
])
def test_error_apart_from_the_output(cluster: str, expect: list[str]) -> None:
    plan = plan_job(*parse_spec(_spec(cluster, error="{name}.e{job_id}")))
    assert plan.errors == []
    assert all(e in plan.directives for e in expect), plan.directives
    if cluster == "abci3":      # PBS's own default is NAME.eSEQUENCE: no -e is written
        assert not [d for d in plan.directives if d.startswith("-e")], plan.directives
    joined = {"abci3": "-j oe", "abci2": "-j y"}.get(cluster)
    assert joined is None or joined not in plan.directives
    assert joined is None or joined in plan_job(*parse_spec(_spec(cluster))).directives


def test_error_on_the_local_cluster_is_refused_plainly() -> None:
    plan = plan_job(*parse_spec(_spec(error="err.log")))
    assert [p.where for p in plan.errors] == ["error"]
    # every problem at once: a folder as the output too
    plan = plan_job(*parse_spec(_spec(error="err.log", output="logs/")))
    assert [p.where for p in plan.errors] == ["output", "error"]


def test_setup_folders_expand_home_and_variables_as_a_script_would() -> None:
    plan = plan_job(*parse_spec(_spec(setup={"activate": "~/venv",
                                              "module_use": ["${HOME}/mods", "/x y"]})))
    assert '. "${HOME}"/venv/bin/activate' in plan.script
    assert 'module use "${HOME}"/mods' in plan.script and "module use '/x y'" in plan.script
