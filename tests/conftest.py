"""Shared fixtures: an isolated abcitrain home per test, and the real test clusters.

Nothing from the caller's environment reaches a test: every ABCITRAIN_* variable is cleared,
HOME and the XDG folders point into the test's own folder, and torch's extension folder
(DeepSpeed's JIT-built ops, with their lock files) is one the session owns. So a test can
never write into a user's real ledger or wait on a stale lock outside the run.

The Slurm and Grid Engine fixtures start real daemons from Debian packages with the scripts
in tests/infra (root only) and stop them, by PID file, when the session ends. In CI
(CI=true) a cluster that cannot start fails the run instead of skipping its tests; outside
CI the skipped count is said in one line at the end of the run.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from abcitrain.transport import RunResult

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "tests" / "infra"
DATA = ROOT / "tests" / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: Read once, before any test clears it: `ABCITRAIN_UPDATE_GOLDEN=1 pytest tests/test_render.py`
#: rewrites the golden files (and then compares nothing, see test_render).
UPDATE_GOLDEN = os.environ.get("ABCITRAIN_UPDATE_GOLDEN") == "1"
#: The start of every skip reason of a test whose real cluster could not start.
NO_CLUSTER = "real cluster unavailable"
#: This run's claim on the system-wide test clusters (tests/infra/common.sh: claim): another
#: run's fixtures refuse to start over them, and never stop them.
OWNER_ENV = {"ABCITRAIN_TEST_OWNER": f"pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}",
             "ABCITRAIN_TEST_OWNER_PID": str(os.getpid())}


def _isolate(mp: pytest.MonkeyPatch, home: Path, torch_extensions: Path) -> None:
    """Point HOME, the XDG folders, torch's extension folder and abcitrain's own folders
    under ``home``; drop every ABCITRAIN_* setting of the caller's."""
    for name in list(os.environ):
        if name.startswith("ABCITRAIN_"):
            mp.delenv(name)
    home.mkdir(exist_ok=True)
    mp.setenv("HOME", str(home))
    for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                     ("XDG_CACHE_HOME", ".cache"), ("XDG_STATE_HOME", ".local/state")):
        mp.setenv(var, str(home / sub))
    mp.setenv("TORCH_EXTENSIONS_DIR", str(torch_extensions))
    mp.setenv("ABCITRAIN_DATA_DIR", str(home / "data"))
    mp.setenv("ABCITRAIN_CONFIG_DIR", str(home / "config"))
    mp.setenv("ABCITRAIN_CLUSTERS_PATH", str(DATA / "clusters"))


@pytest.fixture(scope="session")
def alloc_counter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/harness/alloc_bytes.c compiled, for LD_PRELOAD: it counts torch's CPU tensor bytes on
    every thread (tests/harness/peak_bytes.py and tests/harness/engine_bytes.py read it)."""
    library = tmp_path_factory.mktemp("alloc-counter") / "alloc_bytes.so"
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-Wall", "-Wextra",
                    "-Werror", "-o", str(library),
                    str(ROOT / "tests" / "harness" / "alloc_bytes.c")],
                   check=True)
    return library


@pytest.fixture(scope="session")
def kit() -> Path:
    """The starter kit (jobs/), for a test that trains with torch and DeepSpeed: it marks the
    test ``kit``."""
    return ROOT / "jobs"


def _xdist_run_folder(config: pytest.Config) -> Path | None:
    """The temporary folder the workers of one pytest-xdist run share (above each worker's
    own); None outside xdist."""
    if not hasattr(config, "workerinput"):
        return None
    return Path(config.getoption("basetemp")).parent


@pytest.fixture(scope="session")
def torch_extensions(tmp_path_factory: pytest.TempPathFactory,
                     pytestconfig: pytest.Config) -> Path:
    """torch's extension folder for the whole run (DeepSpeed compiles its ops once per run,
    never into, or waiting on a lock in, the user's ~/.cache). Under pytest-xdist each
    worker is a session of its own: the workers of one run share one folder, where torch
    builds each op once, the others waiting on its lock file, as the ranks of a job do."""
    run = _xdist_run_folder(pytestconfig)
    if run is not None:
        shared = run / "torch_extensions"
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("torch_extensions")


@pytest.fixture(scope="session", autouse=True)
def isolated_session(tmp_path_factory: pytest.TempPathFactory,
                     torch_extensions: Path) -> Iterator[Path]:
    """The same isolation for the whole run, so that session- and module-scoped fixtures
    (test clusters, calibration and measurement runs), which are set up before any test's
    own fixtures, never see the caller's home, ledger or ~/.cache either."""
    home = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, home, torch_extensions)
        yield home


@pytest.fixture(autouse=True)
def abcitrain_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   torch_extensions: Path) -> Path:
    """Each test gets its own home, data, config and local-spool folders and runs in
    tmp_path; no ABCITRAIN_* setting of the caller's reaches it."""
    home = tmp_path / "home"
    _isolate(monkeypatch, home, torch_extensions)
    monkeypatch.chdir(tmp_path)
    return home


_skipped_real: list[str] = []

#: The marker each real part's fixture gives a test that uses it (directly or through
#: another fixture), so that ``-m "not slurm"`` skips every Slurm test and nothing else.
FIXTURE_MARKERS = {"slurm_cluster": "slurm", "sge_cluster": "sge", "pbs_cluster": "pbs",
                   "ssh_nodes": "ssh", "kit": "kit", "alloc_counter": "kit"}
#: Test clusters named by a parameter: such a test asks for the cluster's fixture at run time
#: (``request.getfixturevalue``), which collection cannot see.
CLUSTER_MARKERS = {"slurm-test": "slurm", "sge-test": "sge"}


def markers_for(fixtures: Sequence[str], params: Sequence[object]) -> set[str]:
    """The markers of a test that uses ``fixtures`` with parameter values ``params``."""
    found = {FIXTURE_MARKERS[f] for f in fixtures if f in FIXTURE_MARKERS}
    found |= {CLUSTER_MARKERS[p] for p in params if isinstance(p, str) and p in CLUSTER_MARKERS}
    return found


#: The markers of the real parts a run starts once and owns (tests/infra/common.sh: claim).
SHARED_PARTS = frozenset({"slurm", "sge", "pbs", "ssh"})
#: Fixtures whose work is shared by tests that also use a real part: the walltime runs'
#: calibration (test_kit's ``wall``) serves the local run and the three schedulers' runs.
SHARED_FIXTURES = frozenset({"wall"})


#: The pytest-xdist group of the tests of the real parts; a test that needs no real part but
#: must run in their worker (it reads what they recorded in that process) names it itself
#: with ``@pytest.mark.xdist_group(REAL_PARTS_GROUP)``.
REAL_PARTS_GROUP = "real-parts"


def xdist_group(markers: set[str], fixtures: Sequence[str], module: str) -> str:
    """The pytest-xdist group of a test (tests/run.sh runs ``--dist loadgroup``): every test
    of a real cluster or sshd in one group, since one run's worker starts and owns each of
    them (a second worker's start would be refused); every other test with the rest of its
    module, so that a module's costly fixtures (the memory harnesses' measurements) run
    once."""
    if markers & SHARED_PARTS or SHARED_FIXTURES.intersection(fixtures):
        return REAL_PARTS_GROUP
    return module


@pytest.hookimpl(tryfirst=True)     # before pytest-xdist's own hook reads the group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the real parts it needs (FIXTURE_MARKERS, CLUSTER_MARKERS), and
    give it its pytest-xdist group (xdist_group)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = list(callspec.params.values()) if callspec is not None else []
        fixtures = getattr(item, "fixturenames", ())
        markers = markers_for(fixtures, params)
        for name in sorted(markers):
            item.add_marker(getattr(pytest.mark, name))
        if item.get_closest_marker("xdist_group") is None:      # a test's own mark wins
            item.add_marker(pytest.mark.xdist_group(
                name=xdist_group(markers, fixtures, item.nodeid.split("::")[0])))


def _run_locks(config: pytest.Config) -> tuple[Path, Path] | None:
    """The lock files the workers of one pytest-xdist run share: a gate, and the lock a test
    holds while it runs; None outside xdist."""
    run = _xdist_run_folder(config)
    return None if run is None else (run / "tests.gate", run / "tests.lock")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Nothing runs beside a walltime run. The walltime runs (SHARED_FIXTURES: ``wall``)
    are sized from a speed measured once, in their module's first test: any work beside
    the measurement that is gone later (a training, or only a busy CLI test) lets one job
    finish a run sized to need two (seen in CI). So across the workers each test holds a
    lock from its setup (module fixtures included) to its teardown: exclusive for those
    tests, shared for every other. A test that wants it exclusive first closes the gate,
    which every test passes on its way in, so the other worker's stream of short tests
    cannot keep it waiting: that worker finishes the test it is in and waits."""
    paths = _run_locks(item.config)
    if paths is None:
        return (yield)
    exclusive = bool(SHARED_FIXTURES.intersection(getattr(item, "fixturenames", ())))
    gate_path, lock_path = paths
    with gate_path.open("a") as gate, lock_path.open("a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        if not exclusive:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            return (yield)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember each test skipped because its real cluster could not start."""
    if report.skipped and NO_CLUSTER in str(report.longrepr):
        _skipped_real.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say plainly, last, how many real-scheduler tests did not run."""
    if _skipped_real:
        terminalreporter.write_line(
            f"{len(_skipped_real)} tests against real schedulers did not run: {NO_CLUSTER} "
            "(see the skip reasons above; CI=true makes this a failure)", yellow=True,
            bold=True)


def cli(*args: str, ok: bool | None = True) -> Result:
    """Run the abcitrain CLI in-process; by default assert it succeeded."""
    from abcitrain.cli.app import cli as group

    result = CliRunner().invoke(group, list(args), catch_exceptions=False)
    if ok is True:
        assert result.exit_code == 0, result.output
    return result


#: The states a job ends in.
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")


def submitted(spec: str, *args: str) -> str:
    """Submit ``spec`` with the CLI and return the job id ("submitted CLUSTER job ID (NAME)",
    after any warnings)."""
    out = cli("submit", spec, *args).output
    return next(line.split()[3] for line in out.splitlines() if line.startswith("submitted "))


def status_row(job_id: str) -> dict[str, Any]:
    """The job's row of `abcitrain status --json` (the scheduler asked now)."""
    rows: list[dict[str, Any]] = json.loads(cli("status", job_id, "--json").output)
    return rows[0]


def ended(job_id: str) -> dict[str, Any] | None:
    """The job's status row once it has ended; None while it has not."""
    row = status_row(job_id)
    return row if row["state"] in TERMINAL else None


def tagged_rows(stdout: str, tag: str) -> list[dict[str, Any]]:
    """Every JSON object printed after ``tag``, wherever it lies in a line: two ranks (and
    DeepSpeed's own prints) share one pipe."""
    decoder = json.JSONDecoder()
    rows = []
    start = stdout.find(tag)
    while start >= 0:
        row, end = decoder.raw_decode(stdout, start + len(tag))
        rows.append(row)
        start = stdout.find(tag, end)
    return rows


def wait_for(predicate: Callable[[], object], timeout: float = 60, what: str = "") -> object:
    """Poll ``predicate`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.5)


def _start(name: str, up: list[list[str]], down: list[list[str]],
           state: Path | None = None) -> Iterator[Any]:
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        msg = f"{NO_CLUSTER}: the real {name} (tests/infra) needs root on Debian"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    env = {**os.environ, **OWNER_ENV}
    for argv in up:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False,
                              env=env)
        if proc.returncode != 0:
            for d in down:
                subprocess.run(d, capture_output=True, check=False, env=env)
            msg = (f"{NO_CLUSTER}: {name} did not start ({' '.join(argv)}):\n{proc.stdout}\n"
                   f"{proc.stderr}")
            if IN_CI:
                pytest.fail(msg)
            pytest.skip(msg)
    try:
        yield state
    finally:
        for argv in down:
            subprocess.run(argv, capture_output=True, timeout=300, check=False, env=env)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    """A real Slurm 22.05 cluster: 2 nodes x 4 fake GPUs, slurmdbd + MariaDB for sacct."""
    yield from _start("Slurm", [["bash", str(INFRA / "slurm-up.sh")]],
                      [["bash", str(INFRA / "slurm-down.sh")]])


@pytest.fixture(scope="session")
def sge_cluster() -> Iterator[None]:
    """A real Son of Grid Engine cell: this host plus 2 hosts in network namespaces."""
    os.environ.setdefault("SGE_ROOT", "/var/lib/gridengine")
    os.environ.setdefault("SGE_CELL", "default")
    yield from _start("Grid Engine",
                      [["bash", str(INFRA / "sge-up.sh")],
                       ["bash", str(INFRA / "sge-nodes.sh"), "up", "2"]],
                      [["bash", str(INFRA / "sge-down.sh")],
                       ["bash", str(INFRA / "sge-nodes.sh"), "down", "2"]])


@pytest.fixture(scope="session")
def pbs_cluster() -> Iterator[None]:
    """A real OpenPBS complex, built from the vendored source: the server host pbshost and a
    second mom pbsnode2, each in a network namespace; ABCI 3.0's queue names."""
    yield from _start("OpenPBS", [["bash", str(INFRA / "openpbs-up.sh")]],
                      [["bash", str(INFRA / "openpbs-down.sh")]])


@pytest.fixture(scope="session")
def ssh_nodes() -> Iterator[Path]:
    """Two node names (dsnode1, dsnode2) on loopback addresses, served by a real sshd with
    its own host key; yields its folder (ssh_config for ``ssh -F``, port, sshd.log)."""
    yield from _start("sshd", [["bash", str(INFRA / "ssh-up.sh")]],
                      [["bash", str(INFRA / "ssh-down.sh")]], Path("/run/abcitrain-ssh-test"))


@pytest.fixture
def local_jobs() -> Iterator[list[str]]:
    """Local job ids a test started; any still running at the end are cancelled by id."""
    started: list[str] = []
    yield started
    from abcitrain.localsched.commands import cancel

    cancel(started)


class Scripted:
    """A transport whose answers come from a function of the argv (captured scheduler text,
    chosen per command); records the calls and keeps written files in memory."""

    def __init__(self, answer: Callable[[list[str]], RunResult]) -> None:
        self.answer = answer
        self.calls: list[list[str]] = []
        self.files: dict[str, str] = {}

    def run(self, argv: Sequence[str], cwd: str | None = None,
            timeout: float | None = None) -> RunResult:
        self.calls.append(list(argv))
        return self.answer(list(argv))

    def write_text(self, path: str, text: str, mode: int = 0o644) -> None:
        self.files[path] = text

    def read_text(self, path: str) -> str:
        return self.files[path]


class Replay:
    """A transport that answers each command (by argv prefix) with captured output, and
    records the calls: for schedulers that cannot run here (PBS Pro, ABCI's wrappers)."""

    def __init__(self, answers: Mapping[tuple[str, ...], tuple[int, str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []

    def run(self, argv: Sequence[str], cwd: str | None = None,
            timeout: float | None = None) -> RunResult:
        self.calls.append(tuple(argv))
        for prefix, (rc, text) in self.answers.items():
            if tuple(argv[:len(prefix)]) == prefix:
                return RunResult(tuple(argv), rc, text if rc == 0 else "",
                                 "" if rc == 0 else text)
        raise AssertionError(f"no captured output for {argv}")

    def write_text(self, path: str, text: str, mode: int = 0o644) -> None:
        raise AssertionError("not used")

    def read_text(self, path: str) -> str:
        raise AssertionError("not used")
