"""What abcitrain writes and runs for PBS sites: ABCI 3.0 (profile abci3) and a stock PBS
Professional / OpenPBS site (profile pbs).

PBS cannot be installed here. The reservation exchange replays a live OpenPBS server's
answers (tests/data/samples/openpbs/, SOURCES.md); the rest checks the rendered script and
the commands abcitrain would run against what PBS and the ABCI 3.0 guide say.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA, Replay, cli

from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec
from abcitrain.errors import InputError
from abcitrain.profiles import load_profile
from abcitrain.reserve.rules import ReservationRequest
from abcitrain.service import reservations as rsv

LIVE = DATA / "samples" / "openpbs"
UTC = dt.UTC


def plan(**fields: Any) -> Any:
    base = {"name": "t", "cluster": "pbs", "resource": "node", "walltime": "1:00:00",
            "command": ["python", "train.py"]}
    return plan_job(*parse_spec({**base, **fields}))


# -- reservations: every command from the profile ---------------------------------------------

def test_stock_pbs_reservations_run_pbs_commands_never_grid_engines_qr() -> None:
    """On a machine with Grid Engine, qrdel is Grid Engine's: a stock PBS site is asked
    with pbs_rsub / pbs_rstat / pbs_rdel (live OpenPBS answers)."""
    pbs = load_profile("pbs")
    replay = Replay({("pbs_rsub",): (0, (LIVE / "i-rsub.txt").read_text()),
                     ("pbs_rstat", "-f"): (0, (LIVE / "i-rstat-f.txt").read_text()),
                     ("pbs_rdel",): (0, "")})
    req = ReservationRequest("node", 1, Decimal("0.5"),
                             dt.datetime(2026, 12, 1, 14, 6, tzinfo=UTC))
    booked = rsv.create(pbs, req, "s2resv", None, dt.datetime(2026, 11, 30, tzinfo=UTC),
                        replay)
    assert booked.resv_id == "R19.vm"
    assert replay.calls[0] == ("pbs_rsub", "-R", "202612011406", "-E", "202612020206",
                               "-N", "s2resv", "-l", "select=1:ncpus=64",
                               "-l", "place=scatter:excl")
    listed = rsv.list_reservations(pbs, replay)
    assert [r.resv_id for r in listed] == ["R19.vm"] and listed[0].hosts == ("vm",)
    rsv.cancel(pbs, "R19.vm", dt.datetime(2026, 11, 30, tzinfo=UTC), replay)
    assert replay.calls[-2:] == [("pbs_rstat", "-f", "R19.vm"), ("pbs_rdel", "R19.vm")]
    assert not [c for c in replay.calls if c[0].startswith("qr")]


def test_abci3_keeps_abcis_site_commands() -> None:
    abci3 = load_profile("abci3").data["reservations"]
    assert (abci3["list"], abci3["show"], abci3["delete"]) == (
        ["qrstat", "-f"], ["qrstat", "-f", "{id}"], ["qrdel", "{id}"])


def test_a_profile_naming_no_command_is_refused_with_exit_2(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    clusters = tmp_path / ".abcitrain" / "clusters"
    clusters.mkdir(parents=True)
    data = yaml.safe_load((Path(__file__).parents[1] / "abcitrain" / "profiles" /
                           "pbs.yaml").read_text())
    for verb in ("list", "delete"):
        del data["reservations"][verb]
    (clusters / "mypbs.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as info:
        rsv.list_reservations(load_profile("mypbs"), Replay({}))
    assert "reservations.list" in str(info.value)
    result = cli("reserve", "cancel", "R1.vm", "--cluster", "mypbs", ok=False)
    assert result.exit_code == 2
    assert "reservations.delete" in result.output and "Traceback" not in result.output


# -- job scripts -----------------------------------------------------------------------------

def test_whole_node_types_are_spread_one_chunk_per_host_on_a_stock_site() -> None:
    # PBS packs chunks on one host (place=free is its default; the live server placed
    # select=2 on one host): scatter puts each on its own host, excl keeps others off
    assert "-l place=scatter:excl" in plan(nodes=2).directives
    assert "-l select=2:ncpus=64" in plan(nodes=2).directives


def test_abci3_writes_what_its_guide_writes_and_no_place() -> None:
    # The ABCI 3.0 guide's multi-node scripts give `-q rt_HF` and `-l select=N[:mpiprocs=..]`
    # and no place: rt_HF is a whole-node queue, whose chunks fill a node each
    got = plan(cluster="abci3", resource="rt_HF", nodes=2, group="gaa50000")
    assert "-q rt_HF" in got.directives and "-l select=2" in got.directives
    assert not [d for d in got.directives if "place=" in d]


def test_each_array_task_keeps_its_own_log() -> None:
    got = plan(array="1-3", output="logs/{name}.{array_index}.log")
    assert "-o logs/t.^array_index^.log" in got.directives and not got.errors


def test_a_per_job_log_in_a_folder_uses_pbss_own_name() -> None:
    got = plan(output="logs/{name}.o{job_id}")
    assert "-o logs/" in got.directives and not got.errors


def test_the_log_file_is_read_where_pbs_writes_it() -> None:
    """As the live OpenPBS wrote them (test_pbs_live): no -o, NAME.oSEQUENCE (.INDEX per
    task); a folder, PBS's spool name JOBID.OU (the subjob's id per task); a path, as
    given."""
    from abcitrain.backends import get_backend

    where = get_backend("pbs").output_file
    assert where("t.o{job_id}", "t", "12.pbs1", None) == "t.o12"
    assert where("t.o{job_id}.{array_index}", "t", "12[].pbs1", 3) == "t.o12.3"
    assert where("logs/t.o{job_id}", "t", "12.pbs1", None) == "logs/12.pbs1.OU"
    assert where("logs/", "t", "12.pbs1", None) == "logs/12.pbs1.OU"
    assert where("logs/", "t", "12[].pbs1", 3) == "logs/12[3].pbs1.OU"
    assert where("logs/t.^array_index^.log".replace("^array_index^", "{array_index}"), "t",
                 "12[].pbs1", 2) == "logs/t.2.log"
    assert where("/work/out.log", "t", "12.pbs1", None) == "/work/out.log"
    assert "-o" not in " ".join(plan(output="{name}.o{job_id}").directives)


def test_a_job_id_pbs_cannot_write_is_refused_with_the_forms_it_can() -> None:
    got = plan(output="logs/run-{job_id}.txt")
    [problem] = got.errors
    assert problem.where == "output" and "DIR/{name}.o{job_id}" in problem.message


def test_walltime_overrun_is_stated_not_called_a_maximum(tmp_path: Path) -> None:
    spec = tmp_path / "j.yaml"
    spec.write_text(yaml.safe_dump({"name": "t", "cluster": "abci3", "resource": "rt_HF",
                                    "nodes": 2, "group": "gaa5", "walltime": "1:00:00",
                                    "command": ["true"]}))
    out = cli("submit", "--dry-run", str(spec)).output
    assert "maximum charge" not in out
    # 2 x 7.5 points/h x 1 h, and with PBS's 2 min poll: 2 x 7.5 x 62/60
    assert "charge at the full walltime: 15.0000 points" in out
    assert "up to 00:02:00 past its walltime" in out and "up to 15.5000 points" in out
