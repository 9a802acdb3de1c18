"""The organizer's board (``abcitrain board``) over real data: real local jobs of three teams
(one completed, one running, one failed, one waiting for another) and a synthetic sacct
import, served on loopback and read by Debian's chromium through chromium-driver; the same
page written with --html and opened offline; the token off loopback, in a private network
namespace."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, cli, ended, submitted, wait_for
from harness.jsonschemas import validate
from harness.procs import stop

from abcitrain.board.config import BoardConfig, Team, load_board
from abcitrain.errors import InputError

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

PRICED = """extends: local
tariffs:
  minimum_seconds: 1.8
  services:
    - {from: 2024-01-01, on-demand: 1.0, spot: 1.0}
  types:
    cpu: [{from: 2024-01-01, rate: 10}]
"""
SCRIPT_NAME = "<script>document.title='pwned'</script>"
IMG_NAME = "<img src=x onerror=alert(1)>"
TEAM_NAME = '<b>Blue</b> & "co"'
TITLE = "Hackathon <2026>"


def _job(tmp_path: Path, name: str, group: str, command: str,
         walltime: str = "1:00:00") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "cluster": "priced", "resource": "cpu", "walltime": walltime,
        "group": group, "command": ["bash", "-c", command]}))
    return str(path)


@pytest.fixture
def event(tmp_path: Path, local_jobs: list[str]) -> dict[str, Any]:
    """Three teams' real jobs and imported accounting; the board file; who ran what."""
    clusters = tmp_path / ".abcitrain" / "clusters"
    clusters.mkdir(parents=True)
    (clusters / "priced.yaml").write_text(PRICED)
    (tmp_path / "abcitrain.yaml").write_text(yaml.safe_dump(
        {"budgets": {"team1": 100, "team2": 25, "team3": 40}}))
    ends = (dt.datetime.now().astimezone() + dt.timedelta(days=3)).replace(microsecond=0)
    board_file = tmp_path / "board.yaml"
    board_file.write_text(yaml.safe_dump({
        "title": TITLE, "ends": ends.isoformat(), "refresh_s": 10,
        "groups": [{"group": "team1", "team": TEAM_NAME}, "team2", "team3"]}))
    ids: dict[str, str] = {}
    for name, group, command, walltime in (("ok", "team1", "echo fine", "0:10:00"),
                                           ("long", "team1", "sleep 900", "1:00:00"),
                                           ("bad", "team2", "exit 3", "0:10:00")):
        ids[name] = submitted(_job(tmp_path, name, group, command, walltime))
        local_jobs.append(ids[name])          # cancelled at the end whatever fails next
    # queued: waits for team1's long job (the local scheduler cannot hold one)
    ids["later"] = submitted(_job(tmp_path, "later", "team2", "true"), "--depends-on",
                             ids["long"])
    local_jobs.append(ids["later"])
    # team3 ran without abcitrain: its scheduler's accounting, imported (5 nodes x 1 h x 10
    # points/h = 50 points, over its 40; the failed one 1 node x 6 min = 1 point)
    day = dt.date.today() - dt.timedelta(days=1)
    (tmp_path / "acct.txt").write_text(
        "JobID|User|Account|Partition|NNodes|Submit|ElapsedRaw|State|AllocNodes|JobName\n"
        f"9001|carol|team3|cpu|5|{day}T09:00:00|3600|COMPLETED|5|{SCRIPT_NAME}\n"
        f"9002|carol|team3|cpu|1|{day}T11:00:00|360|FAILED|1|{IMG_NAME}\n")
    cli("points", "import", "acct.txt", "--format", "sacct", "--cluster", "priced")
    for name in ("ok", "bad"):
        wait_for(lambda name=name: ended(ids[name]), 120, f"job {name} to end")  # type: ignore[misc]
    wait_for(lambda: _state(ids["long"]) == "RUNNING", 120, "the long job to run")
    assert _state(ids["later"]) == "PENDING"
    return {"ids": ids, "board_file": board_file, "ends": ends}


def _state(job_id: str) -> str:
    rows = json.loads(cli("status", job_id, "--json").output)
    return str(rows[0]["state"])


@pytest.fixture
def board_server(event: dict[str, Any]) -> Iterator[str]:
    """``abcitrain board`` on 127.0.0.1, any free port, as a user starts it; its URL.
    Stopped by its PID at the end."""
    proc = subprocess.Popen([sys.executable, "-m", "abcitrain.cli", "board",
                             str(event["board_file"]), "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")),
                              daemon=True)
    reader.start()
    try:
        line = wait_for(lambda: next((x for x in lines if "http://" in x), None)
                        or proc.poll() is not None, 120, "the board to start")
        assert isinstance(line, str), lines
        url = line.split(" at ", 1)[1].split("/;", 1)[0].split(";", 1)[0]
        assert url.startswith("http://127.0.0.1:"), line
        yield url.rstrip("/") + "/"
    finally:
        stop(proc)
        reader.join(timeout=10)
    assert not any("Traceback" in x for x in lines), lines


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Debian's headless chromium, driven by chromium-driver (selenium), with a fresh
    profile and nothing of its own reaching the network."""
    missing = [p for p in (CHROMIUM, DRIVER) if not os.path.exists(p)]
    if missing:
        msg = f"Debian's chromium and chromium-driver are not installed ({', '.join(missing)})"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-extensions",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1400,2200"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _page_teams(driver: Any) -> dict[str, dict[str, str]]:
    from selenium.webdriver.common.by import By

    teams = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "#teams tbody tr"):
        cells = {c.get_attribute("data-field"): c.text
                 for c in row.find_elements(By.CSS_SELECTOR, "td[data-field]")}
        teams[row.get_attribute("data-group")] = cells
    return teams


def _section(driver: Any, group: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'section.team[data-group="{group}"]')


def _check_page(driver: Any, event: dict[str, Any]) -> None:
    """The page shows exactly what `points --json` and `status --json` say, names as text."""
    from selenium.webdriver.common.by import By

    report = {g["group"]: g for g in json.loads(cli("points", "--json",
                                                    "--no-refresh").output)["groups"]}
    shown = _page_teams(driver)
    assert set(shown) == {"team1", "team2", "team3"}
    for group, row in shown.items():
        g = report[group]
        assert row["budget"] == g["budget"]
        assert row["spent"] == g["taken"]
        assert row["left"] == g["remaining"]
        assert row["burn_per_day"] == g["burn_per_day"]
        assert row["runs_out_on"] == (g["forecast_exhausted"] or "-")
    assert shown["team1"]["team"] == TEAM_NAME            # the team's name, as text
    counts = {g: {k: int(shown[g][k]) for k in ("running", "queued", "finished", "failed")}
              for g in shown}
    assert counts == {"team1": {"running": 1, "queued": 0, "finished": 1, "failed": 0},
                      "team2": {"running": 0, "queued": 1, "finished": 0, "failed": 1},
                      "team3": {"running": 0, "queued": 0, "finished": 1, "failed": 1}}
    # every job abcitrain ran, in its team's section, in the state `status --json` says
    states = {r["job_id"]: r for r in json.loads(cli("status", "--json", "-n", "50").output)}
    ids = event["ids"]
    for name, group, table in (("ok", "team1", "finished"), ("long", "team1", "running"),
                               ("bad", "team2", "failed"), ("later", "team2", "queued")):
        row = _section(driver, group).find_element(
            By.CSS_SELECTOR, f'table.jobs-{table} tr[data-job="priced/{ids[name]}"]')
        assert row.find_element(By.CSS_SELECTOR, ".job-name").text == name
        if table in ("finished", "failed"):
            assert states[ids[name]]["state"] in row.text
    bad = _section(driver, "team2").find_element(
        By.CSS_SELECTOR, f'tr[data-job="priced/{ids["bad"]}"] td[data-field="exit_code"]')
    assert bad.text == str(states[ids["bad"]]["exit_code"]) == "3"
    # the imported jobs' names: shown as text, nothing of them ran or was built
    names = [e.text for e in _section(driver, "team3").find_elements(By.CSS_SELECTOR,
                                                                     ".job-name")]
    assert sorted(names) == sorted([SCRIPT_NAME, IMG_NAME])
    assert driver.title == TITLE
    assert driver.find_elements(By.TAG_NAME, "script") == []
    assert driver.find_elements(By.TAG_NAME, "b") == []
    images = driver.find_elements(By.TAG_NAME, "img")
    assert len(images) == 4                     # 3 burn-downs and the timeline: no `x`
    assert all(driver.execute_script("return arguments[0].naturalWidth", i) > 0
               for i in images)
    # the warnings: team2 runs out before the event ends, team3 already has
    assert "before the event ends" in _section(driver, "team2").find_element(
        By.CSS_SELECTOR, ".warning").text
    assert "out of points" in _section(driver, "team3").find_element(
        By.CSS_SELECTOR, ".warning").text
    assert _section(driver, "team1").find_elements(By.CSS_SELECTOR, ".warning") == []


def test_the_board_in_a_browser_shows_what_the_cli_reports(
        event: dict[str, Any], board_server: str, browser: Any, tmp_path: Path) -> None:
    browser.get(board_server)
    _check_page(browser, event)
    shot = tmp_path / "board.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000                  # a page, not a blank
    if os.environ.get("BOARD_SCREENSHOT_TO"):     # the README's picture
        shutil.copy(shot, os.environ["BOARD_SCREENSHOT_TO"])
    # the same numbers as data, in the documented shape
    with urllib.request.urlopen(board_server + "data.json", timeout=60) as reply:
        data = json.load(reply)
        headers = reply.headers
    validate("board", data)
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    team2 = next(t for t in data["teams"] if t["group"] == "team2")
    assert _page_teams(browser)["team2"]["spent"] == team2["spent"]
    # read-only: a form post or a delete changes nothing, it is refused
    for method in ("POST", "DELETE", "PUT"):
        request = urllib.request.Request(board_server, method=method, data=b"x=1")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 405


def test_the_html_file_opens_offline_in_the_same_browser(
        event: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    out = tmp_path / "shared" / "board.html"
    out.parent.mkdir()
    written = cli("board", str(event["board_file"]), "--html", str(out))
    assert f"wrote {out} (3 teams)" in written.output
    html = out.read_text()
    assert "http-equiv=\"refresh\"" not in html          # a file to share does not reload
    assert "http://" not in html and "https://" not in html   # nothing to fetch
    browser.set_network_conditions(offline=True, latency=0, download_throughput=0,
                                   upload_throughput=0)
    browser.get(out.as_uri())
    _check_page(browser, event)


def test_a_board_off_loopback_needs_its_token(event: dict[str, Any], tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        msg = "needs root, unshare and ip for a private network namespace"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    token = "f3a9" * 8
    token_file = tmp_path / "board.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    done = subprocess.run(["unshare", "-n", sys.executable,
                           str(ROOT / "tests" / "harness" / "board_netns.py"), "10.200.0.1",
                           str(token_file), str(event["board_file"])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    without = seen["without_token_file"]
    assert without["code"] == 2 and "give --token-file" in without["output"]
    assert "?token=" in seen["announced"] and token not in seen["announced"]
    for refused in ("no_token", "no_token_data", "wrong_token", "wrong_bearer"):
        assert seen[refused]["status"] == 401, (refused, seen[refused])
        assert "team1" not in seen[refused]["body"]
    right = seen["right_token"]
    assert right["status"] == 303 and right["location"] == "/"
    assert "HttpOnly" in right["cookie"] and "SameSite=Strict" in right["cookie"]
    assert seen["with_cookie"]["status"] == 200 and "team1" in seen["with_cookie"]["body"]
    assert seen["bearer"]["status"] == 200 and '"team1"' in seen["bearer"]["body"]
    assert seen["post"]["status"] == 405
    assert token not in seen["stderr_after"] and "Traceback" not in seen["stderr_after"]


# --- without a browser ------------------------------------------------------------------


def test_every_problem_of_a_board_file_in_one_message(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({
        "refresh_s": 2, "ends": "next week", "groups": ["g1", "g1", "bad group!"],
        "reservations": ["abci33"]}))
    result = cli("board", "b.yaml", "--json", ok=None)
    assert result.exit_code == 2
    for expected in ("refresh_s", "ends", "bad group!"):
        assert expected in result.output, result.output
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "groups": ["g1", "g1"], "reservations": ["abci33"]}))
    result = cli("board", "c.yaml", ok=None)
    assert result.exit_code == 2
    assert "g1 is listed twice" in result.output
    assert "unknown cluster 'abci33' (did you mean 'abci3'?)" in result.output
    nothing = cli("board", "--html", "x.html", ok=None)
    assert nothing.exit_code == 2 and "no group to show" in nothing.output
    assert not (tmp_path / "x.html").exists()


def test_off_loopback_without_a_usable_token_file_starts_nothing(tmp_path: Path) -> None:
    result = cli("board", "--group", "g1", "--host", "0.0.0.0", ok=None)
    assert result.exit_code == 2 and "give --token-file" in result.output
    weak = tmp_path / "t"
    weak.write_text("short\n")
    weak.chmod(0o644)
    result = cli("board", "--group", "g1", "--host", "0.0.0.0", "--token-file", str(weak),
                 ok=None)
    assert result.exit_code == 2
    assert "chmod 600" in result.output and "at least 16 characters" in result.output


def test_the_json_is_the_documented_shape_even_with_nothing_recorded() -> None:
    data = json.loads(cli("board", "--group", "g1", "--group", "g2", "--json").output)
    validate("board", data)
    assert [t["group"] for t in data["teams"]] == ["g1", "g2"]
    assert all(t["spent"] == "0.0000" and t["counts"]["running"] == 0 for t in data["teams"])


def test_one_queue_query_per_cluster_per_refresh_whatever_the_number_of_teams(
        tmp_path: Path, local_jobs: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from abcitrain.board import snapshot
    from abcitrain.service import following

    clusters = tmp_path / ".abcitrain" / "clusters"
    clusters.mkdir(parents=True)
    for name in ("east", "west"):
        (clusters / f"{name}.yaml").write_text("extends: local\n")
    teams = [f"team{i}" for i in range(12)]
    for i, group in enumerate(teams):
        path = tmp_path / f"{group}.yaml"
        path.write_text(yaml.safe_dump({
            "name": f"j{i}", "cluster": "east" if i % 2 else "west", "resource": "cpu",
            "walltime": "0:30:00", "group": group, "command": ["sleep", "600"]}))
        local_jobs.append(submitted(str(path)))
    asked: list[list[str]] = []
    real = following._query_queue

    def counted(backend: Any, transport: Any, ids: list[str], *rest: Any) -> Any:
        asked.append(list(ids))
        return real(backend, transport, ids, *rest)

    monkeypatch.setattr(following, "_query_queue", counted)
    config = load_board(None, teams)
    for _ in range(3):
        sources = snapshot.refresh(config)
        assert sources.failures == {}
    assert len(asked) == 3 * 2                       # two clusters, three refreshes
    assert all(len(ids) == 6 for ids in asked)       # each with all six of its jobs
    shown = snapshot.collect(config, sources).data["teams"]
    assert [t["counts"]["running"] + t["counts"]["queued"] for t in shown] == [1] * 12


def test_names_from_reservations_and_teams_are_text_in_the_page() -> None:
    from abcitrain.backends.reservations import Reservation
    from abcitrain.board.page import render_page
    from abcitrain.board.snapshot import Sources, collect

    now = dt.datetime.now().astimezone()
    config = BoardConfig("t", (Team("g1", "<i>Team</i>"),))
    resv = Reservation("R1<svg onload=alert(1)>", name="<script>x()</script>",
                       group="g1", start=now, end=now + dt.timedelta(hours=2), nodes=2)
    snap = collect(config, Sources(reservations=[("abci3", resv)]), now)
    page = render_page(snap, 60)
    assert "<script" not in page and "<svg" not in page and "<i>" not in page
    assert "&lt;i&gt;Team&lt;/i&gt;" in page
    assert '<meta http-equiv="refresh" content="60">' in page
    assert snap.data["reservations"][0]["name"] == "<script>x()</script>"


def test_the_asgi_app_answers_only_localhost_and_only_reads() -> None:
    from abcitrain.board.server import Board

    config = BoardConfig("t", (Team("g1", "g1"),))
    app = Board(config, lambda: ("<p>page</p>", {"ok": True}), token=None, loopback=True)

    def ask(method: str, host: str, path: str = "/") -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "query_string": b"",
                 "headers": [(b"host", host.encode())]}
        asyncio.run(app(scope, receive, send))
        return sent[0]["status"], sent[1]["body"]

    assert ask("GET", "127.0.0.1:8765")[0] == 503        # before the first build
    app.update()
    assert ask("GET", "127.0.0.1:8765") == (200, b"<p>page</p>")
    assert ask("GET", "localhost:8765", "/data.json")[0] == 200
    assert ask("GET", "[::1]:8765")[0] == 200
    # another site's name for this address (DNS rebinding) is not answered
    assert ask("GET", "evil.example:8765")[0] == 421
    assert ask("POST", "127.0.0.1:8765")[0] == 405
    assert ask("GET", "127.0.0.1:8765", "/admin")[0] == 404
    with pytest.raises(InputError):
        load_board(None, ["g1"], refresh_s=1)


def test_the_refresh_thread_rebuilds_the_page_from_the_stores(
        tmp_path: Path, local_jobs: list[str], caplog: pytest.LogCaptureFixture) -> None:
    """The served board's own thread (not the request path) refreshes and rebuilds: each
    round sees what changed in the job store since, and a failure would be logged."""
    import dataclasses

    from abcitrain.board.page import build_page
    from abcitrain.board.server import Board

    (tmp_path / "j.yaml").write_text(yaml.safe_dump({
        "name": "j", "cluster": "local", "resource": "cpu", "walltime": "0:10:00",
        "group": "g1", "command": ["sleep", "1"]}))
    # 0.2 s between rounds: below what a board file may say, to see several rounds here
    config = dataclasses.replace(load_board(None, ["g1"]), refresh_s=0.2)  # type: ignore[arg-type]

    board = Board(config, lambda: build_page(config), token=None, loopback=True)
    board.update()
    assert board.refreshes == 1
    local_jobs.append(submitted(str(tmp_path / "j.yaml")))
    thread = board.keep_fresh()
    try:
        def counts() -> dict[str, int] | None:
            page = board._page
            assert page is not None
            found: dict[str, int] = json.loads(page.data)["teams"][0]["counts"]
            return found if found["finished"] == 1 else None

        seen = wait_for(counts, 120, "the refresh thread to see the job end")
        assert seen == {"running": 0, "queued": 0, "finished": 1, "failed": 0}
        assert board.refreshes >= 2
    finally:
        board.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert "board refresh failed" not in caplog.text
