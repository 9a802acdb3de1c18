"""Points end to end: estimates, the budget guard, settling from accounting, the ledger's
robustness (concurrent writers, kill -9) and the report, on a priced local cluster."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from conftest import DATA, cli, wait_for

from abcitrain.points.ledger import Ledger
from abcitrain.points.showpoint import parse_show_point

PRICED = """extends: local
tariffs:
  minimum_seconds: 1.8
  services:
    - {from: 2024-01-01, on-demand: 1.0}
  types:
    cpu: [{from: 2024-01-01, rate: 10}]
"""


def _project(tmp_path: Path, budget: object = 25) -> None:
    d = tmp_path / ".abcitrain" / "clusters"
    d.mkdir(parents=True, exist_ok=True)
    (d / "priced.yaml").write_text(PRICED)
    (tmp_path / "abcitrain.yaml").write_text(yaml.safe_dump({"budgets": {"team1": budget}}))


def _job(tmp_path: Path, name: str, walltime: str = "1:00:00", **extra: Any) -> str:
    data = {"name": name, "cluster": "priced", "resource": "cpu", "walltime": walltime,
            "group": "team1", "command": ["bash", "-c", "sleep 2"], **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _points() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli("points", "--json").output)
    return data


def test_estimate_guard_settle_and_report(tmp_path: Path, local_jobs: list[str]) -> None:
    _project(tmp_path)
    dry = cli("submit", "--dry-run", _job(tmp_path, "a")).output
    assert "maximum charge: 10.0000 points (1 x cpu x 01:00:00; cpu at 10 points/h" in dry
    assert not Path(os.environ["ABCITRAIN_DATA_DIR"], "ledger.db").exists()
    for name in ("a", "b"):
        out = cli("submit", _job(tmp_path, name)).output
        local_jobs.append(out.split()[3])
    refused = cli("submit", _job(tmp_path, "c"), ok=None)
    assert refused.exit_code == 2
    assert ("would cost up to 10.0000 points, but group team1 has 5.0000 of its 25 left "
            "(20.0000 already committed)") in refused.output
    assert len(Ledger().rows()) == 2                       # nothing charged for c
    assert "c.yaml" not in cli("status").output and len(local_jobs) == 2
    # a smaller job still fits; an array is charged for every task
    arr = cli("submit", _job(tmp_path, "d", walltime="0:09:00", array="1-3")).output
    assert "maximum charge: 4.5000 points (1 x cpu x 00:09:00 x 3 array tasks" in arr
    local_jobs.append(arr.split()[3])
    # once the jobs end, status settles them at the real elapsed time
    wait_for(lambda: all(r["state"] == "COMPLETED" for r in json.loads(
        cli("status", "--json").output)), 60, "jobs to end")
    rows = {r["name"]: r for r in Ledger().rows()}
    for name in ("a", "b"):
        elapsed = rows[name]["elapsed_s"]
        assert 1.5 < elapsed < 30
        assert Decimal(rows[name]["actual_e4"]) / 10000 == \
            (Decimal(10) * Decimal(str(elapsed)) / 3600).quantize(Decimal("0.0001"))
    assert rows["d"]["elapsed_s"] > 5                      # three tasks of ~2 s each
    report = _points()["groups"][0]
    assert report["group"] == "team1" and report["pending_estimates"] == "0.0000"
    assert Decimal(report["remaining"]) > Decimal("24.9")
    assert [j["name"] for j in report["jobs"]] == ["a", "b", "d"]
    text = cli("points", "--no-refresh").output
    assert "group team1: budget 25" in text and "estimate 10.0000, actual" in text


def test_plot_is_written(tmp_path: Path, local_jobs: list[str]) -> None:
    _project(tmp_path, 100)
    out = cli("submit", _job(tmp_path, "p", walltime="0:30:00")).output
    local_jobs.append(out.split()[3])
    cli("points", "--no-refresh", "--plot", "budget.png")
    png = (tmp_path / "budget.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_show_point_balances_cap_what_is_left(tmp_path: Path) -> None:
    samples = DATA / "samples" / "abci"
    for name in ("show_point-v3.txt", "show_point-v2.txt"):
        [g] = parse_show_point((samples / name).read_text())
        assert (g.group, g.used, g.point) == ("grpname", Decimal("12345.6789"), 100000)
    (tmp_path / "sp.txt").write_text(
        "Group                 Disk            ObjectStorage                    Used"
        "           Point   Used%\nteam1                    5                  0.0124"
        "                996.5000           1,000      99\n")
    _project(tmp_path, 1000)
    assert "3.5000 left" in cli("points", "sync", "--cluster", "priced", "--file",
                                "sp.txt").output
    refused = cli("submit", _job(tmp_path, "big"), ok=None)
    assert refused.exit_code == 2 and "show_point balance synced" in refused.output
    assert "3.5000 left" in refused.output
    # the report shows the same figure the guard used
    [group] = json.loads(cli("points", "--json", "--no-refresh").output)["groups"]
    assert (group["remaining"], group["show_point_remaining"]) == ("3.5000", "3.5000")


WRITER = """
import sys, datetime as dt
from decimal import Decimal
from abcitrain.points.ledger import Charge, Ledger
from abcitrain.points.tariffs import Quote
q = Quote("rt_F", "spot", Decimal("1.2"), Decimal(1), dt.date(2024, 4, 1), dt.date(2024, 4, 1),
          Decimal("1.8"))
ledger = Ledger()
worker = sys.argv[1]
for i in range(int(sys.argv[2])):
    ledger.record(Charge("c", f"{worker}-{i}", "job", "g", "u", "n", "2026-01-01T00:00:00",
                         q, 1, 1, 60, Decimal("0.02")))
"""


def test_eight_writers_lose_nothing(tmp_path: Path) -> None:
    Ledger()    # create the file first, as a team's first user would
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(w), "200"]) for w in range(8)]
    assert [p.wait(timeout=300) for p in procs] == [0] * 8
    assert Ledger().count() == 1600
    # recording is idempotent per (cluster, job id)
    subprocess.run([sys.executable, "-c", WRITER, "0", "200"], check=True)
    assert Ledger().count() == 1600


KILLED = """
import sys, datetime as dt
from decimal import Decimal
from abcitrain.points.ledger import Charge, Ledger
from abcitrain.points.tariffs import Quote
q = Quote("rt_F", "spot", Decimal("1.2"), Decimal(1), dt.date(2024, 4, 1), dt.date(2024, 4, 1),
          Decimal("1.8"))
ledger = Ledger()
batch = 0
print("ready", flush=True)
while True:
    ledger.record_many(Charge("c", f"{batch}-{i}", "job", "g", "u", "n", "2026-01-01T00:00:00",
                              q, 1, 1, 60, Decimal("0.02")) for i in range(5000))
    batch += 1
"""


def test_kill_9_mid_write_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(2.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    path = Path(os.environ["ABCITRAIN_DATA_DIR"]) / "ledger.db"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    count = conn.execute("SELECT COUNT(*) FROM charges").fetchone()[0]
    conn.close()
    assert count > 0 and count % 5000 == 0       # whole transactions only
    assert Ledger().count() == count             # and it still opens and works
