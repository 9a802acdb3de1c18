"""Job spec validation: every problem at once, each naming the key, the value and the choices."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli

from abcitrain.batch.spec import load_spec, parse_spec
from abcitrain.domain import ArrayRange
from abcitrain.errors import InputError

GOOD = {
    "name": "train", "cluster": "abci3", "resource": "rt_HF", "nodes": 2,
    "walltime": "2:00:00", "group": "gaa50000", "command": ["python", "train.py"],
}


def test_a_good_spec_builds_a_frozen_jobspec() -> None:
    spec, profile = parse_spec(dict(GOOD, array="1-10:3", env={"N": 3}))
    assert spec.walltime_s == 7200
    assert spec.array == ArrayRange(1, 10, 3) and spec.array.count == 4
    assert spec.env == {"N": "3"}
    assert spec.service == "spot"          # batch jobs on ABCI use the spot service
    assert profile.scheduler == "pbs"
    with pytest.raises(AttributeError):
        spec.nodes = 3  # type: ignore[misc]


def test_reservation_implies_the_reserved_service() -> None:
    spec, _ = parse_spec(dict(GOOD, reservation="R1234.pbs1"))
    assert spec.service == "reserved"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        'name: "1bad name"\ncluster: abci3\nresource: rt_XX\ncommand: "python train.py"\n'
        "walltime: 1:30\nnodes: 0\nenv: {'1X': a, B: [1]}\narray: 5-1\ncolour: blue\n"
        "extra_directives: ['-l select=1; rm -rf /']\nservice: gold\n")
    with pytest.raises(InputError) as info:
        load_spec(path)
    where = {p.where: p.message for p in info.value.problems}
    assert "letters, digits" in where["name"] and "'1bad name'" in where["name"]
    assert "not a shell string" in where["command"]
    assert "at least 1" in where["nodes"]
    assert "env.1X" in where and "env.B" in where
    assert "START <= END" in where["array"]
    assert where["colour"].startswith("unknown key; valid keys here:") and "walltime" in \
        where["colour"]
    assert "rt_HF, rt_HG, rt_HC" in where["resource"] and "'rt_XX'" in where["resource"]
    assert "choose one of: on-demand, spot, reserved" in where["service"]
    assert "extra_directives.0" in where
    assert "walltime" not in where    # 1:30 is an hour and a half, not YAML's 90
    assert len(info.value.problems) == 10


def test_walltime_1_30_is_ninety_minutes_not_base_60(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("name: a\ncluster: local\nresource: cpu\nwalltime: 1:30\n"
                    "command: [/bin/true]\n")
    spec, _ = load_spec(path)
    assert spec.walltime_s == 5400


def test_unknown_cluster_lists_the_known_ones() -> None:
    with pytest.raises(InputError) as info:
        parse_spec(dict(GOOD, cluster="abci9"))
    msg = str(info.value)
    assert "unknown cluster 'abci9'" in msg and "abci2, abci3" in msg


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: a\ncommand: [unclosed\n")
    with pytest.raises(InputError) as info:
        load_spec(path)
    assert f"{path}:" in str(info.value)


def test_job_ids_are_checked_against_the_scheduler_form() -> None:
    with pytest.raises(InputError) as info:
        parse_spec(dict(GOOD, depends_on=["1234.pbs1", "12; rm -rf ~"]))
    assert [p.where for p in info.value.problems] == ["depends_on.1"]


def test_bad_spec_exits_2_with_one_message_and_submits_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ncluster: local\nresource: gpu\nwalltime: soon\n"
                    "command: [/bin/true]\n")
    result = cli("submit", str(path), ok=None)
    assert result.exit_code == 2
    assert "2 problems" in result.output
    assert "walltime: 'soon' is not a duration" in result.output
    assert "resource: 'gpu' is not a resource type of cluster 'local'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / ".abcitrain").exists()


@pytest.mark.parametrize(("text", "seconds"), [
    ("1:00:00:00", 86400), ("0:12:00:00", 43200), ("2-03:00:00", 183600), ("1:30", 5400)])
def test_walltimes_as_real_scripts_write_them(text: str, seconds: int) -> None:
    # ABCI 2.0 scripts write h_rt=1:00:00:00 (Grid Engine's D:HH:MM:SS)
    from abcitrain.util.durations import parse_duration

    assert parse_duration(text) == seconds


def test_job_names_may_start_with_a_digit_and_pbs_takes_digits_only() -> None:
    """OpenPBS's verify_value_jobname lets a submitted job's name start with a digit (a real
    ABCI 3.0 script names its job 0134); Grid Engine would read a digits-only name as a job
    id where qdel and -hold_jid take either."""
    from abcitrain.batch.render import plan_job
    from abcitrain.batch.spec import parse_spec

    job = {"cluster": "abci3", "resource": "rt_HF", "walltime": "1:00:00", "group": "g1",
           "command": ["true"]}
    plan = plan_job(*parse_spec({**job, "name": "0150_pretrain"}))
    assert "-N 0150_pretrain" in plan.directives
    assert "-N 0134" in plan_job(*parse_spec({**job, "name": "0134"})).directives
    with pytest.raises(InputError) as info:
        parse_spec({**job, "name": "12345", "cluster": "abci2", "resource": "rt_F"})
    assert "digits only" in str(info.value) and "job id" in str(info.value)


def test_pbs_keep_with_an_output_path_is_a_warning() -> None:
    from abcitrain.batch.render import plan_job
    from abcitrain.batch.spec import parse_spec

    plan = plan_job(*parse_spec({"name": "k", "cluster": "abci3", "resource": "rt_HF",
                                 "walltime": "1:00:00", "group": "g1", "command": ["true"],
                                 "output": "logs/k.log", "extra_directives": ["-k oe"]}))
    [warning] = [p for p in plan.problems if p.severity == "warning"]
    assert "ignores the -o path" in warning.message and not plan.errors


def test_pbs_keep_direct_writes_to_the_output_path_and_is_no_warning() -> None:
    """-k oed: d writes straight to the -o path (OpenPBS server/job_func.c skips the keep
    rule when the keep list holds d), so nothing is wrong with -o beside it."""
    from abcitrain.batch.render import plan_job
    from abcitrain.batch.spec import parse_spec

    plan = plan_job(*parse_spec({"name": "k", "cluster": "abci3", "resource": "rt_HF",
                                 "walltime": "1:00:00", "group": "g1", "command": ["true"],
                                 "output": "logs/k.log", "extra_directives": ["-k oed"]}))
    assert plan.problems == ()
