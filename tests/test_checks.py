"""Limit checks: every violation at once, each with a severity; errors stop submission."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import cli

from abcitrain.batch.checks import check_job
from abcitrain.batch.spec import parse_spec


def _problems(**fields: object) -> dict[str, str]:
    data = {"name": "t", "cluster": "abci3", "resource": "rt_HF", "walltime": "1:00:00",
            "group": "gaa50000", "command": ["/bin/true"], **fields}
    spec, profile = parse_spec(data)
    found: dict[str, str] = {}
    for p in check_job(spec, profile):
        key = f"{p.severity}:{p.where}"
        found[key] = f"{found[key]} | {p.message}" if key in found else p.message
    return found


def test_a_job_within_limits_has_no_problems() -> None:
    assert _problems(nodes=128, walltime="168:00:00") == {}


def test_all_violations_are_reported_together() -> None:
    found = _problems(nodes=200, walltime="200:00:00", array="1-80000", group=None)
    assert "error:group" in found
    assert "200 is over the spot cap of 128 nodes" in found["error:nodes"]
    assert "over the spot cap of 168:00:00" in found["error:walltime"]
    assert "80000 tasks is over the cap of 75000" in found["error:array"]


def test_node_time_product_says_the_longest_walltime_that_fits() -> None:
    found = _problems(service="on-demand", nodes=4, walltime="4:00:00")
    assert "16.00 node-hours is over the on-demand cap of 12" in found["error:walltime"]
    assert "the longest walltime is 03:00:00" in found["error:walltime"]


def test_multi_node_on_a_shared_type_is_refused() -> None:
    found = _problems(resource="rt_HG", nodes=2)
    assert "shared type runs on one node" in found["error:nodes"]
    assert "rt_HF" in found["error:nodes"]


def test_grid_engine_afterok_is_a_warning_not_an_error() -> None:
    """Grid Engine's backend says it (Backend.plan_problems), when the job is planned."""
    from abcitrain.batch.render import plan_job

    spec, profile = parse_spec({"name": "t", "cluster": "abci2", "resource": "rt_F",
                                "walltime": "1:00:00", "group": "gaa50000",
                                "command": ["/bin/true"], "depends_on": ["12"]})
    found = [f"{p.severity}:{p.where}" for p in plan_job(spec, profile).problems]
    assert found == ["warning:dependency"]
    assert "whatever their exit status" in plan_job(spec, profile).problems[0].message


def test_check_command_exits_2_and_dry_run_touches_nothing(tmp_path: Path) -> None:
    job = {"name": "big", "cluster": "abci2", "resource": "rt_AF", "nodes": 65,
           "walltime": "100:00:00", "group": "gaa1", "command": ["python", "x.py"]}
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(job))
    result = cli("check", "big.yaml", ok=None)
    assert result.exit_code == 2
    assert "65 is over the spot cap of 64" in result.output
    assert "over the spot cap of 72:00:00" in result.output
    assert "2304" in result.output
    dry = cli("submit", "--dry-run", "big.yaml", ok=None)
    assert dry.exit_code == 2
    assert not (tmp_path / ".abcitrain").exists()


@pytest.mark.parametrize(("cluster", "resource"), [("abci2", "rt_F"), ("abci2", "rt_AF"),
                                                   ("abci3", "rt_HF")])
def test_on_demand_multi_node_jobs_are_capped_at_12_node_hours(cluster: str,
                                                               resource: str) -> None:
    # both guides: "On-demand: 12 nodes · hours" for jobs on several nodes
    over = _problems(cluster=cluster, resource=resource, nodes=4, walltime="3:00:01",
                     service="on-demand")
    assert "12" in over.get("error:walltime", "") + over.get("error:nodes", ""), over
    fits = _problems(cluster=cluster, resource=resource, nodes=4, walltime="3:00:00",
                     service="on-demand")
    assert not [k for k in fits if k.startswith("error:")], fits


def test_check_shows_the_price_and_its_json_has_one_shape(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`check` showed no price, and its JSON had other keys when it refused."""
    import json

    monkeypatch.chdir(tmp_path)
    job = {"name": "big", "cluster": "abci3", "resource": "rt_HF", "group": "gaa50000",
           "nodes": 2, "walltime": "2:00:00", "command": ["python", "train.py"]}
    Path("ok.yaml").write_text(yaml.safe_dump(job))
    Path("bad.yaml").write_text(yaml.safe_dump(dict(job, nodes=999)))
    text = cli("check", "ok.yaml").output
    # 2 nodes x 2 h x 7.5 points per node-hour (abci3's rt_HF tariff)
    assert "charge at the full walltime: 30.0000 points (2 x rt_HF x 02:00:00" in text
    ok = json.loads(cli("check", "--json", "ok.yaml").output)
    bad_run = cli("check", "--json", "bad.yaml", ok=None)
    assert bad_run.exit_code == 2
    bad = json.loads(bad_run.output)
    assert set(ok) == set(bad) == {"ok", "cluster", "title", "errors", "warnings",
                                   "charge_at_walltime", "charge_with_overrun"}
    assert (ok["ok"], ok["charge_at_walltime"], ok["charge_with_overrun"]) == (
        True, "30.0000", "30.5000")
    assert (bad["ok"], bad["cluster"]) == (False, "abci3") and bad["errors"]
