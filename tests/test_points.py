"""Points end to end: estimates, the budget guard, settling from accounting, the ledger's
robustness (concurrent writers, kill -9) and the report, on a priced local cluster."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA, cli, wait_for

from abcitrain.points.ledger import Charge, Ledger
from abcitrain.points.showpoint import parse_show_point
from abcitrain.points.tariffs import Quote

QUOTE = Quote("rt_F", "spot", Decimal("1.2"), Decimal(1), dt.date(2024, 4, 1), dt.date(2024, 4, 1),
              Decimal("1.8"))

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
    # check is submit without the submission: it refuses c the same way, touching nothing
    checked = cli("check", _job(tmp_path, "c"), ok=None)
    assert checked.exit_code == 2 and "has 5.0000 of its 25 left" in checked.output
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
import sqlite3, sys, datetime as dt
from decimal import Decimal
from abcitrain.points.ledger import INSERT_COLUMNS, Charge, Ledger
from abcitrain.points.tariffs import Quote
q = Quote("rt_F", "spot", Decimal("1.2"), Decimal(1), dt.date(2024, 4, 1), dt.date(2024, 4, 1),
          Decimal("1.8"))
ledger = Ledger()
ledger.record(Charge("c", "first", "job", "g", "u", "n", "2026-01-01T00:00:00", q, 1, 1, 60,
                     Decimal("0.02")))
conn = sqlite3.connect(ledger.path)
template = conn.execute(f"SELECT {', '.join(INSERT_COLUMNS)} FROM charges").fetchone()
conn.close()
at = INSERT_COLUMNS.index("ref")

def rows(batch):
    for i in range(5000):
        if batch == 1 and i == 2500:
            # half of this transaction's rows are written: say so, and wait to be killed
            print("open", flush=True)
            sys.stdin.readline()
        yield (*template[:at], f"{batch}-{i}", *template[at + 1:])

ledger.insert_rows(rows(0))
print("committed", flush=True)
ledger.insert_rows(rows(1))
"""


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_kill_9_mid_write_leaves_the_ledger_as_it_was(tmp_path: Path, journal: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer is killed while its transaction is open (half its rows written, told so by
    the writer itself): the ledger afterwards equals a snapshot taken before the kill, in
    WAL and in the `delete` journal mode the README recommends for shared ledgers."""
    monkeypatch.setenv("ABCITRAIN_LEDGER_JOURNAL", journal)
    proc = subprocess.Popen([sys.executable, "-c", KILLED], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "committed"
        assert proc.stdout.readline().strip() == "open"
        path = Path(os.environ["ABCITRAIN_DATA_DIR"]) / "ledger.db"
        reader = sqlite3.connect(path, timeout=30)
        snapshot = reader.execute("SELECT * FROM charges ORDER BY rowid").fetchall()
        reader.close()
        assert len(snapshot) == 5001       # the first row and the committed batch only
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    conn = sqlite3.connect(path, timeout=30)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal
    assert conn.execute("SELECT * FROM charges ORDER BY rowid").fetchall() == snapshot
    conn.close()
    ledger = Ledger()                       # it still opens, and takes the next write
    assert ledger.count() == 5001
    assert ledger.record(Charge("c", "after", "job", "g", "u", "n", "2026-01-01T00:00:00",
                                QUOTE, 1, 1, 60, Decimal("0.02")))
    assert ledger.count() == 5002


def _charge(day: str, e4: int, usr: str = "alice") -> dict[str, Any]:
    return {"cluster": "abci3", "ref": f"{day}-{usr}-{e4}", "kind": "job", "grp": "g1",
            "usr": usr, "name": "j", "submitted_at": f"{day}T10:00:00+00:00",
            "state": "COMPLETED", "estimate_e4": e4, "actual_e4": e4, "refund_e4": 0}


def test_the_report_names_its_window_and_forecasts_whenever_points_were_spent() -> None:
    import datetime as dt

    from abcitrain.points.budget import Standing
    from abcitrain.points.report import report

    today = dt.date(2026, 11, 30)
    st = {"g1": Standing("g1", Decimal(100), Decimal(20), Decimal(80))}
    # spent 20 points 19 days ago and nothing since: the rate is over all 20 days
    [old] = report([_charge("2026-11-11", 200000)], st, today)["groups"]
    assert old["burn_window"] == "all 20 days since the first charge (2026-11-11)"
    assert old["burn_per_day"] == "1.0000" and old["forecast_exhausted"] == "2027-02-18"
    # recent spending: the last 7 days, named
    [recent] = report([_charge("2026-11-01", 100000), _charge("2026-11-28", 70000, "bob")],
                      st, today, {"g1": {"alice": Decimal(60), "bob": Decimal(40)}})["groups"]
    assert recent["burn_window"] == "the last 7 days" and recent["burn_per_day"] == "1.0000"
    assert recent["user_shares"] == {
        "alice": {"share": "60", "taken": "10.0000", "left": "50.0000"},
        "bob": {"share": "40", "taken": "7.0000", "left": "33.0000"}}


def test_an_empty_ledger_still_plots(tmp_path: Path) -> None:
    cli("points", "--plot", "empty.png")
    assert (tmp_path / "empty.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not Path(os.environ["ABCITRAIN_DATA_DIR"]).exists()


def test_a_budget_refusal_with_json_is_json(tmp_path: Path) -> None:
    """`submit --json` printed a budget refusal as text only: now the same JSON shape as a
    submission, ok false, the refusal in its errors, exit 2, nothing charged."""
    _project(tmp_path, 5)
    refused = cli("submit", "--json", _job(tmp_path, "big"), ok=None)
    assert refused.exit_code == 2
    data = json.loads(refused.stdout)
    assert data["ok"] is False and data["job_id"] is None and data["cluster"] == "priced"
    assert "would cost up to 10.0000 points, but group team1 has 5" in \
        data["errors"][0]["message"]
    dry = json.loads(cli("submit", "--dry-run", "--json", _job(tmp_path, "small",
                                                               walltime="0:06:00")).stdout)
    assert dry["ok"] is True and dry["dry_run"] is True and dry["job_id"] is None
    assert dry["script_text"].startswith("#!/bin/bash") and dry["charge_at_walltime"] == "1.0000"
    assert set(data) == set(dry)                      # one shape, refused or not
    assert Ledger().rows() == []                      # nothing charged


def test_a_group_already_over_budget_gets_the_day_it_ran_out_not_a_forecast() -> None:
    """Over budget, the report said "runs out on <today>"; it ran out on the day the
    running total reached the budget, and says by how much it is over."""
    import datetime as dt

    from abcitrain.points.budget import Standing
    from abcitrain.points.report import report

    st = {"g1": Standing("g1", Decimal(100), Decimal(130), Decimal(-30))}
    rows = [_charge("2026-11-10", 600000), _charge("2026-11-20", 500000),
            _charge("2026-11-28", 200000)]
    [g] = report(rows, st, dt.date(2026, 11, 30))["groups"]
    assert (g["forecast_exhausted"], g["over_budget_by"]) == ("2026-11-20", "30")
    [fine] = report(rows[:1], {"g1": Standing("g1", Decimal(100), Decimal(60), Decimal(40))},
                    dt.date(2026, 11, 16))["groups"]
    assert fine["over_budget_by"] is None and fine["forecast_exhausted"] > "2026-11-16"


def test_a_group_synced_from_show_point_shows_in_points_without_a_budget_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `points sync`, `points` said "no charges recorded yet": a synced group is shown
    with show_point's allotment as its budget and its real balance as what is left."""
    monkeypatch.chdir(tmp_path)                          # no abcitrain.yaml here
    (tmp_path / "sp.txt").write_text(
        "Group                 Disk            ObjectStorage                    Used"
        "           Point   Used%\nteam9                    5                  0.0124"
        "                996.5000           1,000      99\n")
    cli("points", "sync", "--cluster", "abci3", "--file", "sp.txt")
    [group] = json.loads(cli("points", "--json", "--no-refresh").output)["groups"]
    assert (group["group"], group["budget"], group["remaining"]) == ("team9", "1000", "3.5000")
    text = cli("points", "--no-refresh").output
    assert "group team9: budget 1000" in text and "no charges recorded yet" not in text
