"""ABCI 3.0 (PBS Professional) and ABCI 2.0 reservations against CAPTURED real outputs.

PBS Professional cannot be installed here, and ABCI 2.0 is retired: the scheduler's side of
each exchange is the captured text in tests/data/samples (sources in SOURCES.md; openpbs/ is
a live OpenPBS server's answers), replayed by a transport that answers each command with its
captured output. Everything else (argv, parsers, checks, ledger) is the real code. The two
answers no capture holds are named HANDMADE_* below and say what they stand for.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import yaml
from conftest import DATA, Replay

from abcitrain.backends import get_backend
from abcitrain.backends.base import Output
from abcitrain.backends.reservations import ReservationBackend
from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec
from abcitrain.errors import InputError
from abcitrain.points.ledger import Ledger
from abcitrain.profiles import load_profile
from abcitrain.reserve.rules import ReservationRequest
from abcitrain.service import reservations as rsv

SAMPLES = DATA / "samples"
JST = dt.timezone(dt.timedelta(hours=9))
TOKYO = load_profile("abci3")


def _sample(name: str) -> str:
    return (SAMPLES / name).read_text()


# HAND-MADE: qrdel's success output is not captured anywhere; the replay answers rc 0 with
# nothing, and the test asserts only on the argv and on what abcitrain records.
HANDMADE_QRDEL_OK = (0, "")
# HAND-MADE: no capture shows qrstat asked about an id it does not know; the wording follows
# qstat's real "Unknown Job Id" (openpbs/unk.err), the form PBS's clients share.
HANDMADE_QRSTAT_UNKNOWN = (1, "qrstat: Unknown Reservation Id R99.pbs1\n")


def test_abci3_booking_uses_the_guides_command_and_charges_the_ledger() -> None:
    replay = Replay({("qrsub",): (0, _sample("pbs/qrsub.txt")),
                     ("qrstat", "-f"): (0, _sample("pbs/qrstat-f.txt")),
                     ("qrdel",): HANDMADE_QRDEL_OK})
    req = ReservationRequest("rt_HF", 4, Decimal(7), dt.datetime(2025, 1, 15, tzinfo=JST))
    now = dt.datetime(2025, 1, 10, 9, 0, tzinfo=JST)
    booked = rsv.create(TOKYO, req, "Reserve_for_AI", "grpname", now, replay)
    # the guide's own example: qrsub -R 250115 -D 7 -P grpname -n 4 -N "Reserve_for_AI"
    assert replay.calls == [("qrsub", "-R", "250115", "-D", "7", "-P", "grpname", "-n", "4",
                             "-N", "Reserve_for_AI")]
    assert booked.resv_id == "R1234.pbs1"
    row = Ledger().get("abci3", "R1234.pbs1", "reservation")
    assert row is not None
    assert (row["actual_e4"], row["state"]) == (75600000, "BOOKED")    # 11.25 x 24 x 4 x 7
    # cancelled well before 21:00 the day before: the whole charge comes back
    done = rsv.cancel(TOKYO, "R1234.pbs1", now, replay)
    assert replay.calls[-2:] == [("qrstat", "-f", "R1234.pbs1"), ("qrdel", "R1234.pbs1")]
    assert done.refund == Decimal("7560.0000")
    assert done.reservation.hosts == ("hnode015", "hnode021", "hnode022")
    row = Ledger().get("abci3", "R1234.pbs1", "reservation")
    assert row is not None and (row["refund_e4"], row["state"]) == (75600000, "CANCELLED")


def test_abci2_booking_command_and_a_nodes() -> None:
    profile = load_profile("abci2")
    # Grid Engine grants at once: the booking is read back (qrstat -ar) to check its hosts
    replay = Replay({("qrsub",): (0, _sample("uge/qrsub.txt")),
                     ("qrstat", "-ar"): (0, _sample("uge/qrstat-ar.txt"))})
    req = ReservationRequest("rt_AF", 2, Decimal(7), dt.datetime(2023, 7, 5, tzinfo=JST))
    booked = rsv.create(profile, req, "Reserve_for_AI", "grpname",
                        dt.datetime(2023, 6, 1, tzinfo=JST), replay)
    assert replay.calls == [("qrsub", "-a", "20230705", "-d", "7", "-g", "grpname", "-n", "2",
                             "-N", "Reserve_for_AI", "-l", "rt_AF"), ("qrstat", "-ar", "12345")]
    assert booked.resv_id == "12345"
    row = Ledger().get("abci2", "12345", "reservation")
    assert row is not None and row["actual_e4"] == 2 * 7 * 108 * 10_000   # FY2023: 1.5 x 3 x 24


def test_refused_booking_runs_nothing_and_charges_nothing() -> None:
    replay = Replay({})
    req = ReservationRequest("rt_HF", 33, Decimal(61), dt.datetime(2025, 1, 15, tzinfo=JST))
    with pytest.raises(InputError) as err:
        rsv.create(TOKYO, req, "bad name;rm", None, dt.datetime(2025, 1, 14, 22, tzinfo=JST),
                   replay)
    wheres = [p.where for p in err.value.problems]
    assert wheres == ["name", "group", "days", "nodes", "node-hours", "start"]
    assert replay.calls == []
    assert not Ledger().path.exists() or Ledger().count() == 0


def test_cancelling_after_the_deadline_is_refused_before_qrdel() -> None:
    # Aurora's R6710682 starts Thu Aug 07 09:00 2025; on ABCI's calendar cancelling closed
    # at 21:00 the day before
    aurora = _sample("pbs/pbs_rstat-f-aurora.txt")
    replay = Replay({("qrstat", "-f"): (0, aurora)})
    with pytest.raises(InputError, match="cancelling closed at 2025-08-06 21:00"):
        rsv.cancel(TOKYO, "R6710682", dt.datetime(2025, 8, 6, 22, 0, tzinfo=JST), replay)
    assert all(c[0] != "qrdel" for c in replay.calls)


def _job_plan(**fields: object) -> object:
    data = {"name": "train", "cluster": "abci3", "resource": "rt_HF", "group": "grpname",
            "walltime": "2:00:00", "command": ["python", "train.py"], **fields}
    spec, profile = parse_spec(yaml.safe_load(yaml.safe_dump(data)), "job.yaml")
    return plan_job(spec, profile)


def test_jobs_in_a_pbs_reservation_are_checked_against_it() -> None:
    plan = _job_plan(reservation="R1234.pbs1", nodes=4)
    assert "#PBS -q R1234" in plan.script and "#PBS -v RTYPE=rt_HF" in plan.script  # type: ignore[attr-defined]
    replay = Replay({("qrstat", "-f"): (0, _sample("pbs/qrstat-f.txt"))})
    problems = rsv.job_problems(plan, 0, dt.datetime(2025, 1, 20, tzinfo=JST), replay)  # type: ignore[arg-type]
    assert [str(p) for p in problems] == ["nodes: 4 is more than the 3 nodes reserved in "
                                          "R1234.pbs1"]
    # with times known (Aurora's capture): 13 h from 10:00 runs past the 21:00 end
    aurora = Replay({("qrstat", "-f"): (0, _sample("pbs/pbs_rstat-f-aurora.txt"))})
    long_job = _job_plan(reservation="R6710682", walltime="13:00:00")
    found = rsv.job_problems(long_job, 0, dt.datetime(2025, 8, 7, 10, 0, tzinfo=JST), aurora)  # type: ignore[arg-type]
    assert [str(p) for p in found] == [
        "walltime: 13:00:00 runs past the end of R6710682 at 2025-08-07 21:00 JST, "
        "where the job would be killed; the longest walltime that fits is 11:00:00"]
    busy = rsv.job_problems(_job_plan(reservation="R6710682", nodes=500), 20,
                            dt.datetime(2025, 8, 7, 10, 0, tzinfo=JST), aurora)  # type: ignore[arg-type]
    assert [(p.where, p.severity) for p in busy] == [("nodes", "warning")]


def test_an_unknown_reservation_is_an_error_in_the_schedulers_words() -> None:
    replay = Replay({("qrstat", "-f"): HANDMADE_QRSTAT_UNKNOWN})
    found = rsv.job_problems(_job_plan(reservation="R99.pbs1"), 0,  # type: ignore[arg-type]
                             dt.datetime(2025, 1, 20, tzinfo=JST), replay)
    assert [p.where for p in found] == ["reservation"]
    assert "R99.pbs1 does not exist on abci3" in found[0].message


def _readers(name: str) -> ReservationBackend:
    reader = get_backend(name).reservations({})
    assert reader is not None
    return reader


def test_captured_listings_parse() -> None:
    pbs = _readers("pbs")
    found = pbs.parse_list(Output(_sample("pbs/pbs_rstat-f-aurora.txt"), "", 0), JST)
    assert len(found) == 7
    assert {r.state for r in found} == {"RESV_RUNNING", "RESV_CONFIRMED"}
    first = found[0]
    assert (first.name, first.nodes, first.owner, first.group) == (
        "HACC-DAOS-Dbg", 8200, "user2", "LightDark")
    assert first.start == dt.datetime(2025, 8, 6, 10, 0, tzinfo=JST)
    assert pbs.parse_create(Output(_sample("pbs/pbs_rsub-cirrus.txt"), "", 0)) == \
        "R122604.indy2-login0"
    uge = _readers("uge")
    (row,) = uge.parse_list(Output(_sample("uge/qrstat.txt"), "", 0), JST)
    assert (row.resv_id, row.state, row.start, row.end) == (
        "12345", "w", dt.datetime(2018, 7, 5, 10, 0, tzinfo=JST),
        dt.datetime(2018, 7, 12, 9, 30, tzinfo=JST))
    shown = uge.parse_show(Output(_sample("uge/qrstat-ar.txt"), "", 0), JST, "12345")
    assert shown is not None and shown.hosts == ("g0001", "g0002") and shown.nodes == 2
    assert "no suitable queues" in _sample("uge/qrsub-error.txt")
    assert uge.explain(_sample("uge/qrsub-error.txt")).startswith("not enough free hosts")  # type: ignore[union-attr]


def test_live_openpbs_reservation_outputs_parse() -> None:
    """pbs_rsub and pbs_rstat -f as a live OpenPBS server printed them (openpbs/)."""
    pbs = _readers("pbs")
    assert pbs.parse_create(Output(_sample("openpbs/i-rsub.txt"), "", 0)) == "R19.vm"
    utc = dt.UTC       # the server's clock was UTC (ctime 14:05 for a 14:06 start)
    shown = pbs.parse_show(Output(_sample("openpbs/i-rstat-f.txt"), "", 0), utc, "R19.vm")
    assert shown is not None
    assert (shown.resv_id, shown.name, shown.owner, shown.state, shown.nodes, shown.hosts) == (
        "R19.vm", "s2resv", "user1", "RESV_CONFIRMED", 1, ("vm",))
    assert shown.start == dt.datetime(2026, 11, 30, 14, 6, tzinfo=utc)
    assert shown.end == dt.datetime(2026, 11, 30, 14, 36, tzinfo=utc)
    assert (shown.end - shown.start).total_seconds() == 1800     # reserve_duration = 1800
