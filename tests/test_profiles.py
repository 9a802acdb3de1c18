"""Cluster profiles: shipped data, user and project overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli

from abcitrain.errors import InputError, UnknownNameError
from abcitrain.profiles import available_names, load_profile


def test_shipped_profiles_load_with_their_limits() -> None:
    assert {"abci2", "abci3", "gridengine", "local", "slurm"} <= set(available_names())
    hf = load_profile("abci3").resource_types["rt_HF"]
    assert (hf.gpus, hf.gpu_memory_gb, hf.cpus) == (8, 141, 192)
    assert hf.limits["spot"].max_walltime_s == 168 * 3600
    assert hf.limits["on-demand"].max_node_hours == 12
    af = load_profile("abci2").resource_types["rt_AF"]
    assert (af.limits["on-demand"].max_nodes, af.limits["spot"].max_nodes) == (4, 64)
    assert load_profile("abci2").group_submit_args == ("-g", "{group}")


def test_user_file_overrides_one_key_and_keeps_the_rest(abcitrain_home: Path) -> None:
    d = abcitrain_home / "config" / "clusters"
    d.mkdir(parents=True)
    (d / "abci3.yaml").write_text(
        "resource_types:\n  rt_HF:\n    limits:\n      spot: {max_nodes: 64}\n")
    p = load_profile("abci3")
    assert p.resource_types["rt_HF"].limits["spot"].max_nodes == 64
    assert p.resource_types["rt_HF"].limits["spot"].max_walltime_s == 168 * 3600
    assert p.resource_types["rt_HG"].gpus == 1
    assert str(d / "abci3.yaml") in p.source


def test_project_profile_extends_a_shipped_one(tmp_path: Path) -> None:
    d = tmp_path / ".abcitrain" / "clusters"
    d.mkdir(parents=True)
    (d / "mysite.yaml").write_text("extends: slurm\ndescription: our cluster\n"
                                   "resource_types:\n  gpu: {gpus: 4}\n")
    p = load_profile("mysite")
    assert p.scheduler == "slurm" and p.description == "our cluster"
    assert p.resource_types["gpu"].gpus == 4


def test_a_broken_profile_lists_all_its_problems(tmp_path: Path) -> None:
    d = tmp_path / ".abcitrain" / "clusters"
    d.mkdir(parents=True)
    (d / "bad.yaml").write_text(
        "scheduler: lsf\nrequest: ['-q {queue}']\njob_id_pattern: '['\nresource_types:\n"
        "  x: {exclusive: maybe, cpus: 0, gpus: 1, memory_gb: 1, colour: red}\n")
    with pytest.raises(InputError) as info:
        load_profile("bad")
    text = str(info.value)
    for needle in ("'lsf' is not a valid scheduler", "unknown placeholder", "regular expression",
                   "resource_types.x.exclusive", "resource_types.x.cpus",
                   "resource_types.x.colour: unknown key"):
        assert needle in text


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="known clusters: abci2, abci3"):
        load_profile("nope")


def test_clusters_command_lists_and_shows() -> None:
    out = cli("clusters").output
    assert "abci3" in out and "pbs" in out and "rt_HF,rt_HG,rt_HC" in out
    shown = cli("clusters", "show", "abci2").output
    assert "submit_args:" in shown and "rt_AF:" in shown and "merged from" in shown
    assert cli("clusters", "show", "nope", ok=None).exit_code == 2


def test_a_retired_cluster_warns_on_check_and_refuses_submit_and_booking(
        tmp_path: Path) -> None:
    """ABCI 2.0 was retired on 2024-10-31 (its profile says so): checking warns, submitting
    and booking are refused before anything runs, pricing history still works."""
    import datetime as dt
    from decimal import Decimal

    import yaml
    from conftest import Replay, cli

    from abcitrain.batch.render import plan_job
    from abcitrain.batch.spec import parse_spec
    from abcitrain.errors import InputError
    from abcitrain.reserve.rules import ReservationRequest
    from abcitrain.service import reservations as rsv
    from abcitrain.service import submitting

    job = {"name": "t", "cluster": "abci2", "resource": "rt_F", "walltime": "1:00:00",
           "group": "gaa50000", "command": ["true"]}
    (tmp_path / "j.yaml").write_text(yaml.safe_dump(job))
    checked = cli("check", "j.yaml")
    assert "warning: cluster: abci2" in checked.output and "retired on 2024-10-31" in \
        checked.output
    nothing = Replay({})
    with pytest.raises(InputError) as info:
        submitting.submit(plan_job(*parse_spec(job)), None, nothing, submit_dir=str(tmp_path))
    assert "retired on 2024-10-31" in str(info.value) and nothing.calls == []
    profile = load_profile("abci2")
    jst = dt.timezone(dt.timedelta(hours=9))
    req = ReservationRequest("rt_F", 2, Decimal(1), dt.datetime(2026, 12, 10, tzinfo=jst))
    with pytest.raises(InputError) as info:
        rsv.create(profile, req, "late", "gaa50000", dt.datetime(2026, 11, 30, tzinfo=jst),
                   nothing)
    assert "retired" in str(info.value) and nothing.calls == []
    # before its retirement the same booking went through the rules as usual
    early = rsv.create(profile, ReservationRequest("rt_F", 2, Decimal(1),
                                                   dt.datetime(2024, 6, 10, tzinfo=jst)),
                       "early", "gaa50000", dt.datetime(2024, 6, 1, tzinfo=jst), nothing,
                       dry_run=True)
    assert early.argv[0] == "qrsub"
