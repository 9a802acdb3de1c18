"""Import scheduler accounting into the points ledger, streaming (bounded memory).

Formats: ``sacct --parsable2`` with a header line (columns looked up by name: JobID, User,
Account, Partition, NNodes, Submit, ElapsedRaw, State; JobName and AllocNodes when there)
and ``qacct -j`` records (jobnumber, taskid, owner, project or account, qsub_time,
ru_wallclock, category, granted_pe, slots, jobname).
Each record is priced at the tariff in force on its submission day and stored with its actual
charge; records already in the ledger are left as they are.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from ..backends.uge import iter_qacct, wallclock_s
from ..domain import ClusterProfile
from .ledger import Ledger, now_iso
from .tariffs import PointsFormula, quote

BATCH = 20_000


@dataclass
class ImportResult:
    """What an import did."""

    read: int = 0
    imported: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    #: Where each reason was first met ("line 7: '2026-13-01T00:00:00'"), to find it.
    first_at: dict[str, str] = field(default_factory=dict)

    def skip(self, why: str, where: str = "") -> None:
        """Count a record left out, by reason, remembering where the first one was."""
        self.skipped[why] = self.skipped.get(why, 0) + 1
        if where:
            self.first_at.setdefault(why, where)


# A record: (ref, user, group, resource, units, submitted ISO 8601, elapsed s, state, name).
# Plain tuples: a million of them are built per import. A job that never started (deleted
# while queued) has elapsed NEVER_STARTED and is charged nothing; one that started is charged
# at least the site's minimum, even when it ran 0 s.
NEVER_STARTED = -1
_Record = tuple[str, str, str, str, int, str, "int | float", str, str]


def _partition_types(profile: ClusterProfile) -> dict[str, str]:
    types = {name: name for name in profile.resource_types}
    for name, t in profile.resource_types.items():
        for template in t.request or profile.request:
            m = re.fullmatch(r"--partition=([A-Za-z0-9_.-]+)", template)
            if m:
                types.setdefault(m.group(1), name)   # a type named like the partition wins
    return types


def sacct_records(lines: Iterable[str], profile: ClusterProfile,
                  result: ImportResult) -> Iterator[_Record]:
    """Records from ``sacct --parsable2`` text with a header line."""
    it = iter(lines)
    header = next(it, "").rstrip("\n").split("|")
    need = ["JobID", "User", "Account", "Partition", "NNodes", "Submit", "ElapsedRaw", "State"]
    missing = [c for c in need if c not in header]
    if missing:
        raise ValueError(f"the sacct header lacks {', '.join(missing)}; run sacct "
                         f"--parsable2 --format={','.join(need)}")
    # column positions as locals: this loop runs once per record, a million times
    job, usr, acc, part, nn, sub, ela, st = (header.index(name) for name in need)
    # AllocNodes (optional) tells a job that ran 0 s from one that never ran (0 nodes: it
    # was cancelled while pending); without it, a 0 s record is taken as never started.
    # Not AllocCPUS: Slurm prints the requested CPUs for a pending job it has looked at.
    nodes = header.index("AllocNodes") if "AllocNodes" in header else None
    # JobName (optional): the report names each job by it
    name = header.index("JobName") if "JobName" in header else None
    width = len(header)
    types = _partition_types(profile)
    days: set[str] = set()
    for number, line in enumerate(it, start=2):
        f = line.rstrip("\n").split("|")
        result.read += 1
        if len(f) < width:
            result.skip("short line", f"line {number}")
            continue
        resource = types.get(f[part])
        if resource is None:
            result.skip(f"partition {f[part]} is not a resource type", f"line {number}")
            continue
        column = "Submit"
        try:
            submitted = f[sub]
            day = submitted[:10]
            if day not in days:
                dt.date.fromisoformat(day)          # refuse a malformed date, once per day
                days.add(day)
            column = "ElapsedRaw"
            elapsed = int(f[ela] or 0)
            column = "NNodes"
            count = int(f[nn])
        except ValueError:
            value = f[{"Submit": sub, "ElapsedRaw": ela, "NNodes": nn}[column]]
            result.skip(f"unreadable {column}", f"line {number}: {value[:40]!r}")
            continue
        ran = f[nodes] not in ("0", "") if nodes is not None else elapsed > 0
        yield (f[job], f[usr], f[acc], resource, count, submitted,
               elapsed if ran else NEVER_STARTED, f[st].split(" ", 1)[0],
               f[name] if name is not None else "")


_QACCT_TIME = re.compile(r"(\d\d)/(\d\d)/(\d{4}) (\d\d:\d\d:\d\d(?:\.\d+)?)")
# Son of Grid Engine prints ctime: "Sun Nov  1 00:00:00 2026"
_CTIME = re.compile(r"[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d) (\d{4})")
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def qacct_time(text: str) -> str | None:
    """A qacct time as ISO 8601 text: Univa's ``MM/DD/YYYY HH:MM:SS.mmm`` (ABCI 2.0) or Son
    of Grid Engine's ctime; None when it is neither (or not a real date)."""
    m = _QACCT_TIME.fullmatch(text)
    if m:
        iso = f"{m[3]}-{m[1]}-{m[2]}T{m[4]}"
    else:
        c = _CTIME.fullmatch(text.strip())
        if c is None or c[1] not in _MONTHS:
            return None
        iso = f"{c[4]}-{_MONTHS[c[1]]}-{int(c[2]):02d}T{c[3]}"
    try:
        dt.date.fromisoformat(iso[:10])
    except ValueError:
        return None
    return iso


def qacct_records(lines: Iterable[str], profile: ClusterProfile,
                  result: ImportResult) -> Iterator[_Record]:
    """Records from ``qacct -j`` text (blocks separated by lines of '=')."""
    for rec in iter_qacct(lines):
        yield from _qacct_one(rec, profile, result)


def _qacct_one(rec: dict[str, str], profile: ClusterProfile,
               result: ImportResult) -> Iterator[_Record]:
    result.read += 1
    where = f"record {result.read} (job {rec.get('jobnumber', '?')[:20]})"
    found = None
    request = f"{rec.get('category', '')} {rec.get('submit_cmd', '')}"   # ABCI: submit_cmd
    for name, value in re.findall(r"([A-Za-z0-9_.]+)=(\d+)", request):
        if name in profile.resource_types:
            found = (name, int(value))
            break
    if found is None:
        result.skip("no resource type in category", where)
        return
    resource, count = found
    if rec.get("granted_pe", "NONE") != "NONE" and "-pe" in " ".join(
            profile.resource_types[resource].request or profile.request):
        count = int(rec.get("slots", count))       # the PE spreads one slot per host
    task = rec.get("taskid", "undefined")
    ref = rec.get("jobnumber", "") + ("" if task == "undefined" else f".{task}")
    submitted = qacct_time(rec.get("qsub_time", ""))
    if submitted is None:
        result.skip("unreadable qsub_time", f"{where}: {rec.get('qsub_time', '')[:40]!r}")
        return
    try:
        elapsed = wallclock_s(rec)
    except ValueError:
        result.skip("unreadable ru_wallclock",
                    f"{where}: {rec.get('ru_wallclock', '')[:40]!r}")
        return
    group = rec.get("project") or rec.get("account") or ""
    failed = rec.get("failed", "0").split()[0]
    if rec.get("start_time", "-/-").strip() in ("-/-", ""):
        elapsed = NEVER_STARTED                 # qacct's mark of a job that never started
    yield (ref, rec.get("owner", ""), group.strip(), resource, count, submitted, elapsed,
           "COMPLETED" if failed == "0" else "FAILED", rec.get("jobname", "").strip())


#: Each accounting format's reader; a backend names its own (``Backend.accounting_format``).
FORMATS = {"sacct": sacct_records, "qacct": qacct_records}


def import_accounting(stream: IO[str], fmt: str, profile: ClusterProfile,
                      ledger: Ledger | Callable[[], Ledger]) -> ImportResult:
    """Price and store every record of ``stream``, in batches of one transaction each.
    ``ledger`` may be a function that opens it: then a file with no importable record (or
    a bad header) creates no ledger."""
    opened: list[Ledger] = [ledger] if isinstance(ledger, Ledger) else []

    def target() -> Ledger:
        if not opened:
            assert not isinstance(ledger, Ledger)
            opened.append(ledger())
        return opened[0]

    result = ImportResult()
    reader = FORMATS.get(fmt)
    if reader is None:
        raise ValueError(f"unknown accounting format {fmt!r}; known: {', '.join(FORMATS)}")
    source = reader(stream, profile, result)
    # One quote per (resource, day): the tariff lookup is not repeated for every record.
    quotes: dict[tuple[str, str], tuple[PointsFormula, tuple[str, str, str, str, str]]] = {}
    source_name = f"import:{fmt}"
    settled_at = now_iso()
    batch: list[tuple[object, ...]] = []
    for ref, user, group, resource, units, submitted, elapsed, state, name in source:
        key = (resource, submitted[:10])
        cached = quotes.get(key)
        if cached is None:
            q = quote(profile, resource, "spot", dt.date.fromisoformat(key[1]))
            cached = quotes[key] = (PointsFormula(q), (
                q.service, str(q.type_rate), str(q.service_coeff), str(q.minimum_s),
                q.type_from.isoformat()))
        formula, (service, *texts) = cached
        if elapsed == NEVER_STARTED:
            actual, elapsed = 0, 0
        else:
            actual = formula(units, elapsed)
        # columns in ledger.INSERT_COLUMNS order
        batch.append((profile.name, ref, "job", group, user, name, submitted, service, resource,
                      units, 1, int(elapsed), *texts, actual, source_name, actual, elapsed,
                      state, settled_at))
        if len(batch) >= BATCH:
            result.imported += target().insert_rows(batch)
            batch = []
    if batch:
        result.imported += target().insert_rows(batch)
    return result
