"""Importing accounting into the ledger: sacct --parsable2 and qacct -j (ABCI's real record)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from conftest import DATA, cli

from abcitrain.points.ledger import Ledger

SACCT = """JobID|User|Account|Partition|NNodes|Submit|ElapsedRaw|State
101|alice|grp1|gpu|2|2024-05-01T10:00:00|3600|COMPLETED
102|bob|grp1|gpu|1|2024-05-02T10:00:00|0|CANCELLED by 0
103|bob|grp1|nosuch|1|2024-05-02T10:00:00|10|COMPLETED
"""


def test_sacct_import_prices_each_record_and_is_idempotent(tmp_path: Path) -> None:
    (tmp_path / "acct.txt").write_text(SACCT)
    out = cli("points", "import", "acct.txt", "--format", "sacct", "--cluster",
              "slurm-test").output
    assert "read 3 records, imported 2 new" in out and "partition nosuch" in out
    rows = {r["ref"]: r for r in Ledger().rows()}
    assert rows["101"]["actual_e4"] == 24000        # 2 nodes x 1 h x 1.2 points/h
    assert rows["102"]["actual_e4"] == 0            # never ran: nothing charged
    again = cli("points", "import", "acct.txt", "--format", "sacct", "--cluster",
                "slurm-test").output
    assert "imported 0 new" in again


def test_abci_qacct_record_is_priced_at_its_date(tmp_path: Path) -> None:
    # ABCI 2.0's documented record: rt_F=1 in submit_cmd, submitted 07/01/2018, 0.020 s
    sample = DATA / "samples" / "uge" / "qacct-j.txt"
    text = sample.read_text().replace("07/01/2018", "07/01/2023")   # FY2023 is the oldest
    (tmp_path / "q.txt").write_text(text)                           # tariff abcitrain ships
    out = cli("points", "import", "q.txt", "--format", "qacct", "--cluster", "abci2").output
    assert "imported 1 new" in out
    [row] = Ledger().rows()
    assert (row["ref"], row["resource"], row["units"], row["grp"], row["name"]) == \
        ("12345", "rt_F", 1, "group", "run.sh")          # named: the report lists it so
    # 0.020 s is under the 1.8 s minimum: 1.0 x 1 x 1.8 / 3600 = 0.0005
    assert Decimal(row["actual_e4"]) / 10000 == Decimal("0.0005")


def test_the_format_defaults_to_the_one_the_clusters_scheduler_writes(tmp_path: Path) -> None:
    """Grid Engine's backend names qacct; the local scheduler names none and says so."""
    text = (DATA / "samples" / "uge" / "qacct-j.txt").read_text()
    (tmp_path / "q.txt").write_text(text.replace("07/01/2018", "07/01/2023"))
    out = cli("points", "import", "q.txt", "--cluster", "abci2").output
    assert "imported 1 new" in out
    refused = cli("points", "import", "q.txt", "--cluster", "local", ok=None)
    assert refused.exit_code == 2 and "pass --format sacct or --format qacct" in refused.output


def test_bad_sacct_header_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("JobID|State\n1|COMPLETED\n")
    result = cli("points", "import", "bad.txt", "--format", "sacct", "--cluster",
                 "slurm-test", ok=None)
    assert result.exit_code == 2 and "lacks User, Account, Partition" in result.output


def test_sacct_allocnodes_tells_a_0_s_run_from_a_job_that_never_started(
        tmp_path: Path) -> None:
    # jobs 16 and 17 of tests/data/samples/slurm/ (Slurm 22.05 here): both 0 s, AllocCPUS 1
    (tmp_path / "acct.txt").write_text(
        "JobID|User|Account|Partition|NNodes|Submit|ElapsedRaw|State|AllocCPUS|AllocNodes\n"
        "16|bob|grp1|gpu|1|2026-12-01T08:59:00|0|CANCELLED by 0|1|0\n"
        "17|bob|grp1|gpu|1|2026-12-01T08:59:00|0|COMPLETED|1|1\n")
    cli("points", "import", "acct.txt", "--format", "sacct", "--cluster", "slurm-test")
    rows = {r["ref"]: r for r in Ledger().rows()}
    assert rows["16"]["actual_e4"] == 0            # never started: nothing
    assert rows["17"]["actual_e4"] == 6            # 1.2 points/h x the 1.8 s minimum


def test_the_report_says_when_a_group_does_not_exist_and_when_it_cuts_its_list(
        tmp_path: Path) -> None:
    """`--group nosuch` said "no charges recorded yet"; a list of 25 charges stopped at 20
    without a word. 25 sacct records of group grp1 imported for real."""
    lines = [f"{200 + i}|alice|grp1|gpu|1|2024-05-01T10:00:00|60|COMPLETED" for i in range(25)]
    (tmp_path / "acct.txt").write_text(SACCT.splitlines()[0] + "\n" + "\n".join(lines) + "\n")
    cli("points", "import", "acct.txt", "--format", "sacct", "--cluster", "slurm-test")
    bad = cli("points", "--group", "grp2", "--no-refresh", ok=None)
    assert bad.exit_code == 2, bad.output
    assert "'grp2' has no budget and no charge; did you mean 'grp1'?" in bad.output
    assert "groups known: grp1" in bad.output and "no charges recorded yet" not in bad.output
    out = cli("points", "--group", "grp1", "--no-refresh").output
    assert "... 5 earlier charges not shown; the last 20 follow (--json lists all)" in out
    assert out.count("job slurm-test/") == 20


def test_sacct_records_keep_their_job_names(tmp_path: Path) -> None:
    """Imported jobs had no name in `points`: sacct's JobName (when asked for) is kept."""
    (tmp_path / "acct.txt").write_text(
        "JobID|User|Account|Partition|NNodes|Submit|ElapsedRaw|State|JobName\n"
        "301|alice|grp1|gpu|1|2024-05-01T10:00:00|60|COMPLETED|llm-sft\n")
    cli("points", "import", "acct.txt", "--format", "sacct", "--cluster", "slurm-test")
    assert [r["name"] for r in Ledger().rows()] == ["llm-sft"]
    assert "job slurm-test/301 llm-sft COMPLETED" in cli("points", "--no-refresh").output
