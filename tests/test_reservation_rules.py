"""Reservation rules and planning: the seed's limits as cases, dated rule changes, the
booking window and deadline, alternatives for refused requests, and reverse planning."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import cli

from abcitrain.errors import InputError
from abcitrain.profiles import load_profile
from abcitrain.reserve.planner import plan_request, plans_for_need
from abcitrain.reserve.rules import ReservationRequest, check_request, rules_of

JST = dt.timezone(dt.timedelta(hours=9))


def _plan(cluster: str, resource: str, nodes: int, days: int, start: dt.date,
          now: dt.datetime) -> object:
    profile = load_profile(cluster)
    rules = rules_of(profile)
    req = ReservationRequest(resource, nodes, Decimal(days),
                             dt.datetime.combine(start, dt.time(), JST))
    return plan_request(rules, profile, req, now)


BOOKED_2024 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=JST)


def test_seed_cases_on_abci2_a_nodes() -> None:
    ok = _plan("abci2", "rt_AF", 30, 9, dt.date(2024, 6, 3), BOOKED_2024)
    assert ok.problems == []                                          # type: ignore[attr-defined]
    # 6,480 node-hours at FY2024's 216 points a node-day (1.5 x 6.00 x 24)
    assert ok.points == Decimal(216 * 30 * 9)                         # type: ignore[attr-defined]
    exact = _plan("abci2", "rt_AF", 18, 16, dt.date(2024, 6, 3), BOOKED_2024)
    assert exact.problems == []                                       # type: ignore[attr-defined]
    assert exact.window.charged_hours * 18 == 6912                    # type: ignore[attr-defined]

    refused = _plan("abci2", "rt_AF", 30, 10, dt.date(2024, 6, 3), BOOKED_2024)
    problems = [str(p) for p in refused.problems]                     # type: ignore[attr-defined]
    assert problems == ["node-hours: 30 nodes x 10 days x 24 h = 7,200 node-hours is over the "
                        "cap of 6,912 per reservation for rt_AF (in force since 2023-05-01)"]
    alts = {o.label: o for o in refused.alternatives}                 # type: ignore[attr-defined]
    assert [(b.nodes, b.days) for b in alts["fewer days"].bookings] == [(30, 9)]
    assert [(b.nodes, b.days) for b in alts["fewer nodes"].bookings] == [(28, 10)]
    chain = alts["2 back-to-back reservations"].bookings
    assert [(b.nodes, b.days) for b in chain] == [(30, 5), (30, 5)]
    assert chain[1].window.start == dt.datetime(2024, 6, 8, 10, 0, tzinfo=JST)
    assert alts["2 back-to-back reservations"].points == Decimal(216 * 30 * 10)
    assert alts["fewer nodes"].points == Decimal(216 * 28 * 10)


def test_dated_rules_the_2023_raise_and_the_2022_cap() -> None:
    # before 2023-05 A-node reservations were capped at 18 nodes
    before = _plan("abci2", "rt_AF", 30, 9, dt.date(2023, 4, 10),
                   dt.datetime(2023, 4, 1, 9, 0, tzinfo=JST))
    assert [p.where for p in before.problems] == ["nodes"]            # type: ignore[attr-defined]
    assert "maximum of 18 nodes" in before.problems[0].message        # type: ignore[attr-defined]
    # before 2022-04 the node-hour cap was 6,144: 18 x 16 (6,912) did not fit
    old = _plan("abci2", "rt_AF", 18, 16, dt.date(2022, 3, 20),
                dt.datetime(2022, 3, 1, 9, 0, tzinfo=JST))
    assert "cap of 6,144" in str(old.problems[0])                     # type: ignore[attr-defined]


def test_abci3_node_hour_cut_on_2025_10_28() -> None:
    # 32 nodes x 14 days = 10,752 node-hours: the normal cap, then the congestion cut to 5,376
    fits = _plan("abci3", "rt_HF", 32, 14, dt.date(2025, 10, 20),
                 dt.datetime(2025, 10, 1, 9, 0, tzinfo=JST))
    assert fits.problems == []                                        # type: ignore[attr-defined]
    assert fits.points == Decimal("11.25") * 24 * 32 * 14             # type: ignore[attr-defined]
    cut = _plan("abci3", "rt_HF", 32, 14, dt.date(2025, 11, 10),
                dt.datetime(2025, 11, 1, 9, 0, tzinfo=JST))
    assert "cap of 5,376" in str(cut.problems[0])                     # type: ignore[attr-defined]
    assert cut.limits.notes == ("2025-10-28: cut to relieve congestion",)  # type: ignore[attr-defined]
    days = {o.label: o.bookings[0].days for o in cut.alternatives}   # type: ignore[attr-defined]
    assert days["fewer days"] == 7                                    # 32 x 7 x 24 = 5,376


def test_window_and_booking_deadline() -> None:
    profile = load_profile("abci3")
    rules = rules_of(profile)
    req = ReservationRequest("rt_HF", 4, Decimal(7), dt.datetime(2025, 1, 15, tzinfo=JST))
    early = dt.datetime(2025, 1, 14, 20, 59, tzinfo=JST)
    problems, _, win = check_request(rules, req, early, profile)
    assert problems == []
    assert win.start == dt.datetime(2025, 1, 15, 10, 0, tzinfo=JST)
    assert win.end == dt.datetime(2025, 1, 22, 9, 30, tzinfo=JST)
    assert win.usable_hours == Decimal("167.5") and win.charged_hours == 168
    assert win.booking_deadline == dt.datetime(2025, 1, 14, 21, 0, tzinfo=JST)
    # at 21:00 the day before, booking has closed; a UTC clock at 12:00 is 21:00 in Tokyo
    late = dt.datetime(2025, 1, 14, 12, 0, tzinfo=dt.UTC)
    problems, _, _ = check_request(rules, req, late, profile)
    assert [str(p) for p in problems] == [
        "start: booking closed at 2025-01-14 21:00 JST; the earliest start now is 2025-01-16"]
    result = plan_request(rules, profile, req, late)
    later = [o for o in result.alternatives if o.label == "a later start"]
    assert later and later[0].bookings[0].window.start == dt.datetime(2025, 1, 16, 10, 0,
                                                                      tzinfo=JST)


def test_every_broken_rule_is_reported_at_once() -> None:
    profile = load_profile("abci3")
    rules = rules_of(profile)
    req = ReservationRequest("rt_HF", 40, Decimal("61.5"), dt.datetime(2025, 1, 2, tzinfo=JST))
    problems, _, _ = check_request(rules, req, dt.datetime(2025, 1, 20, tzinfo=JST), profile)
    assert [p.where for p in problems] == ["days", "days", "nodes", "node-hours", "start"]
    # a type without reservation rules (a shared one) is named, with the types that have some
    with pytest.raises(InputError, match=r"rt_HG cannot be reserved.*rules: rt_HF"):
        rules.limits_for("rt_HG", dt.date(2025, 6, 1))


def test_reverse_planning_from_gpu_hours() -> None:
    profile = load_profile("abci3")
    rules = rules_of(profile)
    now = dt.datetime(2025, 11, 1, 9, 0, tzinfo=JST)
    start = dt.datetime(2025, 11, 3, tzinfo=JST)
    need = Decimal(20000) / 8                                        # GPU-hours on 8-GPU nodes
    options = plans_for_need(rules, profile, "rt_HF", need, start, now, count=3)
    assert options
    prices = [o.points for o in options[:3]]
    assert prices == sorted(prices)                                   # type: ignore[type-var]
    for o in options:
        assert o.usable_node_hours >= need
        for b in o.bookings:
            req = ReservationRequest("rt_HF", b.nodes, b.days, b.window.start)
            assert check_request(rules, req, now, profile)[0] == []
    # Written out from the guide, not from the planner: a booking of N nodes for D days runs
    # 10:00 on the first day to 09:30 the day after the last (24 D - 0.5 usable hours), costs
    # 1.5 x 7.5 x N x D x 24 points, and holds at most 32 nodes and 5,376 node-hours.
    fits = [(n * d, n * (24 * d - Decimal("0.5")) - need, n, d)
            for n in range(1, 33) for d in range(1, 61)
            if n * (24 * d - Decimal("0.5")) >= need and n * d * 24 <= 5376]
    cheapest = min(nd for nd, *_ in fits)
    # 105 node-days buy it five ways (3 x 35 ... 21 x 5): preferring the one that wastes the
    # fewest usable node-hours (21 x 5: 2,509.5 for 2,500) is OUR tie-break, not the guide's
    assert sorted((n, d) for nd, _, n, d in fits if nd == cheapest) == [
        (3, 35), (5, 21), (7, 15), (15, 7), (21, 5)]
    _, _, nodes, days = min(f for f in fits if f[0] == cheapest)
    assert (options[0].bookings[0].nodes, options[0].bookings[0].days) == (nodes, days) \
        == (21, 5)
    fastest = options[-1]
    assert all(fastest.bookings[-1].window.end <= o.bookings[-1].window.end for o in options)
    # more than one reservation holds 6,000 node-hours: the fastest is 32 nodes x 8 days as
    # two back-to-back reservations (one may hold at most 5,376 node-hours)
    big = plans_for_need(rules, profile, "rt_HF", Decimal(6000), start, now, count=1)[-1]
    assert [(b.nodes, b.days) for b in big.bookings] == [(32, 4), (32, 4)]
    assert big.bookings[1].window.start == big.bookings[0].window.end.replace(hour=10,
                                                                              minute=0)
    within = plans_for_need(rules, profile, "rt_HF", need, start, now, within_days=5)
    assert within and all(o.bookings[-1].window.end <= start + dt.timedelta(days=5)
                          for o in within)


def test_a_rule_change_is_a_data_change(tmp_path: Path) -> None:
    d = tmp_path / ".abcitrain" / "clusters"
    d.mkdir(parents=True)
    # a site-local override: a later cut, one dated line added to the built-in rules
    (d / "abci3.yaml").write_text(
        "reservations:\n  limits:\n    rt_HF:\n"
        "      - {from: 2025-01-01, min_days: 1, max_days: 60, max_nodes: 32, "
        "max_node_hours: 10752}\n"
        "      - {from: 2025-10-28, max_node_hours: 5376}\n"
        "      - {from: 2026-04-01, max_nodes: 16, note: fewer nodes}\n")
    out = cli("reserve", "plan", "--cluster", "abci3", "--type", "rt_HF", "--nodes", "20",
              "--days", "5", "--start", "2026-05-10", "--as-of", "2026-05-01T09:00",
              ok=None)
    assert out.exit_code == 2
    assert "20 is over the maximum of 16 nodes" in out.output


def test_cli_plan_text_json_and_bad_input() -> None:
    args = ["reserve", "plan", "--cluster", "abci2", "--type", "rt_AF", "--start", "2024-06-03",
            "--as-of", "2024-05-01T12:00"]
    ok = cli(*args, "--nodes", "30", "--days", "9")
    assert "ok: the request fits the rules" in ok.output
    assert "runs 2024-06-03 10:00 JST to 2024-06-12 09:30 JST" in ok.output
    assert "booking and cancelling close 2024-06-01 21:00 JST" not in ok.output
    assert "booking and cancelling close 2024-06-02 21:00 JST" in ok.output
    assert "cost: 58320 points" in ok.output
    refused = cli(*args, "--nodes", "30", "--days", "10", "--json", ok=None)
    assert refused.exit_code == 2
    data = json.loads(refused.output)
    assert data["ok"] is False and data["points"] == "64800"
    assert {a["label"] for a in data["alternatives"]} == {
        "fewer nodes", "fewer days", "2 back-to-back reservations"}
    # the end date instead of days; and bad input listed at once, exit 2
    assert "30 nodes x 9 days" in cli(*args, "--nodes", "30", "--end", "2024-06-12").output
    bad = cli("reserve", "plan", "--cluster", "abci2", "--type", "rt_X", "--nodes", "3",
              "--days", "2", "--hours", "3", "--start", "now", ok=None)
    assert bad.exit_code == 2
    for text in ("'rt_X' is not a resource type", "books whole days",
                 "exactly one of --days, --hours or --end"):
        assert text in bad.output
    need = cli("reserve", "plan", "--cluster", "abci3", "--type", "rt_HF", "--need-gpu-hours",
               "20000", "--start", "2025-11-03", "--as-of", "2025-11-01T09:00")
    assert "21 nodes x 5 days: 28350 points" in need.output


def test_free_calendar_books_hours_and_splits_at_the_cap() -> None:
    profile = load_profile("slurm-test")              # any start, at most 1 day and 2 nodes
    rules = rules_of(profile)
    now = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
    start = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    options = plans_for_need(rules, profile, "gpu", Decimal(100), start, now, count=1)
    fastest = options[-1]
    assert fastest.label == "2 nodes x 50 hours in 3 reservations"
    assert [b.window.charged_hours for b in fastest.bookings] == [24, 24, 2]
    assert fastest.bookings[2].window.end == dt.datetime(2026, 1, 7, 11, 0, tzinfo=dt.UTC)
    # 1.5 x 1.2 points/h x 2 nodes x 50 h
    assert fastest.points == Decimal("180.0000")
    req = ReservationRequest("gpu", 2, Decimal(3) / 24, start)
    problems, _, win = check_request(rules, req, now, profile)
    assert problems == [] and win.usable_hours == 3 and win.booking_deadline == start


def test_counts_of_one_read_in_the_singular() -> None:
    """ "1 nodes x 1 days" was printed; counts read as English now (util.words.plural)."""
    from abcitrain.util.words import plural

    assert [plural(1, "node"), plural(2, "node"), plural(0, "day"), plural("?", "node"),
            plural(1, "entry"), plural(3, "entry")] == [
        "1 node", "2 nodes", "0 days", "? nodes", "1 entry", "3 entries"]
    one = cli("reserve", "plan", "--cluster", "abci2", "--type", "rt_AF", "--start",
              "2024-06-03", "--as-of", "2024-05-01T12:00", "--nodes", "1", "--days", "1")
    assert "rt_AF: 1 node x 1 day" in one.output, one.output
    assert "nodes" not in one.output.split("\n")[0] and "(s)" not in one.output
