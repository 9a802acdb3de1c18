"""Advance reservations on REAL Grid Engine (qrsub/qrstat/qrdel, qsub -ar) and REAL Slurm
(scontrol create/show/delete reservation, sbatch --reservation) on this machine.

An administrator books 2 nodes for half an hour starting now, the team's job runs inside on
both reserved hosts, jobs that do not fit are refused before submission, the booking is
charged in the ledger and the cancellation refunds the unused share. Every reservation a
test makes is deleted at its end, so the other tests' jobs find the nodes free.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import cli, wait_for

from abcitrain.points.ledger import Ledger

RESOURCE = {"slurm-test": "gpu", "sge-test": "rt_F"}
DELETE = {"slurm-test": ["scontrol", "delete"], "sge-test": ["qrdel"]}


@pytest.fixture(params=["slurm-test", "sge-test"])
def cluster(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue("slurm_cluster" if request.param == "slurm-test" else "sge_cluster")
    return str(request.param)


@pytest.fixture
def booked(cluster: str) -> Iterator[list[str]]:
    """Reservation ids a test made; any left at the end are deleted with the scheduler's own
    command (so a failing test does not keep the nodes reserved)."""
    made: list[str] = []
    yield made
    for resv_id in made:
        arg = f"ReservationName={resv_id}" if cluster == "slurm-test" else resv_id
        subprocess.run([*DELETE[cluster], arg], capture_output=True, check=False)


def _job(tmp_path: Path, cluster: str, name: str, reservation: str, **fields: Any) -> str:
    data = {"name": name, "cluster": cluster, "resource": RESOURCE[cluster],
            "walltime": "0:05:00", "reservation": reservation, "group": "grp1",
            "command": ["bash", "-c", 'echo "hosts: $(paste -sd, "$ABCITRAIN_NODEFILE")"'],
            **fields}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_book_run_inside_check_and_cancel(cluster: str, booked: list[str],
                                          tmp_path: Path) -> None:
    out = cli("reserve", "create", "--cluster", cluster, "--type", RESOURCE[cluster],
              "--nodes", "2", "--hours", "0.5", "--start", "now", "--name", "absmoke",
              "--group", "grp1").output
    resv_id = out.split()[3]
    booked.append(resv_id)
    # 1.5 (reserved) x 1.2 points/h x 2 nodes x 0.5 h
    assert "charged: 1.8 points" in out
    listed = json.loads(cli("reserve", "list", "--cluster", cluster, "--json").output)
    mine = [r for r in listed if r["id"] == resv_id]
    assert mine and mine[0]["charged"] == "1.8000"
    shown = json.loads(cli("reserve", "show", resv_id, "--cluster", cluster, "--json").output)
    assert shown["nodes"] == 2

    # a job inside runs on both reserved hosts
    job = cli("submit", "--wait", _job(tmp_path, cluster, "inside", resv_id, nodes=2)).output
    assert "points: none for the job; reservation" in job
    hosts = next(line for line in job.splitlines() if line.startswith("hosts: "))
    assert len(set(hosts[len("hosts: "):].split(","))) == 2, job

    # refused before submission: more nodes than reserved, a walltime past the end
    bad = cli("submit", _job(tmp_path, cluster, "toobig", resv_id, nodes=3,
                             walltime="0:45:00"), ok=None)
    assert bad.exit_code == 2, bad.output
    assert f"3 is more than the 2 nodes reserved in {resv_id}" in bad.output
    assert "runs past the end of" in bad.output and "the longest walltime that fits is" \
        in bad.output
    # my running job holds one node: a 2-node job would wait for it (a warning)
    sleeper = cli("submit", _job(tmp_path, cluster, "sleeper", resv_id, nodes=1,
                                 command=["sleep", "60"])).output.split()[3]
    wait_for(lambda: json.loads(cli("status", sleeper, "--json").output)[0]["state"]
             == "RUNNING", 60, "the sleeper to run")
    waits = cli("check", _job(tmp_path, cluster, "waits", resv_id, nodes=2)).output
    assert "1 of the 2 reserved nodes are busy with your running jobs" in waits
    plot = tmp_path / "timeline.png"
    cli("reserve", "show", resv_id, "--cluster", cluster, "--plot", str(plot))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cli("cancel", sleeper)
    wait_for(lambda: json.loads(cli("status", sleeper, "--json").output)[0]["state"]
             in ("CANCELLED", "FAILED"), 60, "the sleeper to end")

    # cancelled after its start: the unused share comes back. The rule (charge x unused time
    # / reserved time, rounded half-up to 4 decimals) written out here, at the instants just
    # before and after the cancel: the refund lies between the two, a window of seconds.
    start, end = (dt.datetime.fromisoformat(shown[k]) for k in ("start", "end"))

    def rule_e4(moment: dt.datetime) -> int:
        unused = max(Fraction(0), Fraction((end - moment).total_seconds()))
        exact = Fraction(18000) * unused / Fraction((end - start).total_seconds())
        return math.floor(exact + Fraction(1, 2))

    before = dt.datetime.now(dt.UTC)
    assert before > start
    done = cli("reserve", "cancel", resv_id, "--cluster", cluster).output
    after = dt.datetime.now(dt.UTC)
    assert "refunded" in done
    booked.remove(resv_id)
    row = Ledger().get(cluster, resv_id, "reservation")
    assert row is not None and row["state"] == "CANCELLED"
    assert rule_e4(after) <= row["refund_e4"] <= rule_e4(before) < 18000, (
        rule_e4(after), row["refund_e4"], rule_e4(before))
    gone = cli("submit", _job(tmp_path, cluster, "late", resv_id), ok=None)
    assert gone.exit_code == 2 and f"{resv_id} does not exist on {cluster}" in gone.output


def _allow_five_nodes(tmp_path: Path, cluster: str) -> None:
    """A project override that lets abcitrain's rules pass more nodes than the cluster has,
    so the scheduler itself decides."""
    d = tmp_path / ".abcitrain" / "clusters"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{cluster}.yaml").write_text(yaml.safe_dump({"reservations": {"limits": {
        RESOURCE[cluster]: [{"from": "2024-04-01", "max_nodes": 5, "max_days": 1}]}}}))


def test_scheduler_refusal_in_its_own_words(cluster: str, booked: list[str],
                                            tmp_path: Path) -> None:
    args = ["reserve", "create", "--cluster", cluster, "--type", RESOURCE[cluster],
            "--hours", "0.25", "--start", "now", "--group", "grp1"]
    if cluster == "slurm-test":
        # both nodes for a quarter of an hour, twice: the second overlaps the first
        booked.append(cli(*args, "--nodes", "2", "--name", "hold1").output.split()[3])
        second = cli(*args, "--nodes", "2", "--name", "hold2", ok=None)
        meaning = "What it means: the nodes are not free for the whole period"
    else:
        _allow_five_nodes(tmp_path, cluster)          # the cell has 3 hosts
        second = cli(*args, "--nodes", "5", "--name", "hold2", ok=None)
        meaning = "What it means: not enough free hosts for the whole period"
    assert second.exit_code == 1, second.output
    assert meaning in second.output
    assert all(r["name"] != "hold2" for r in Ledger().rows())


def test_slurm_granting_fewer_nodes_is_undone(slurm_cluster: None, tmp_path: Path) -> None:
    _allow_five_nodes(tmp_path, "slurm-test")
    out = cli("reserve", "create", "--cluster", "slurm-test", "--type", "gpu", "--nodes", "5",
              "--hours", "0.25", "--start", "now", "--name", "short5", ok=None)
    assert out.exit_code == 1, out.output
    assert "granted short5 with 2 of the 5 nodes asked for; it was deleted and nothing was " \
        "charged" in out.output
    listed = subprocess.run(["scontrol", "-o", "show", "reservation"], capture_output=True,
                            text=True, check=False).stdout
    assert "short5" not in listed
    assert not Ledger().path.exists() or Ledger().count() == 0
