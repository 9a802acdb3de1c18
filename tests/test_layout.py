"""The package layout holds: each package imports only what its docstring allows, no two
packages import each other (directly or round a longer circle), and the pure parts import
nothing that does I/O.

Read from the source with ``ast`` (every import, also those inside functions, since the CLI
imports lazily), so a new import against the layering fails here before review.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "abcitrain"

#: What each package (or top-level module) of abcitrain may import. A package's docstring
#: says the same in its "May import:" paragraph (a test compares them). Everyone may read
#: the version (``from .. import __version__``).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "domain": set(),
    "util": {"errors"},
    "backends": {"domain", "errors", "util"},
    "transport": {"errors", "util"},
    "memory": {"errors", "util"},
    "localsched": {"util"},
    "profiles": {"domain", "errors", "util", "backends"},
    "launch": {"domain", "errors", "util", "profiles", "backends"},
    "train": {"domain", "errors", "util", "memory", "points"},
    "batch": {"domain", "errors", "util", "profiles", "train", "backends"},
    "points": {"domain", "errors", "util", "backends"},
    "reserve": {"domain", "errors", "util", "backends", "points", "batch"},
    "container": {"domain", "errors", "util", "batch"},
    "scaffold": {"domain", "errors", "util", "batch", "train", "container", "backends"},
    "service": {"domain", "errors", "util", "batch", "points", "reserve", "train", "backends",
                "transport", "profiles", "container"},
    # the Python API: what the CLI does, from code (and submitit's executor plugin)
    "api": {"domain", "errors", "util", "service", "batch", "profiles", "points", "backends"},
    # the organizer's web page: reads what `points` and `status` read, through the services
    "board": {"errors", "util", "backends", "batch", "points", "reserve", "profiles",
              "service"},
    "cli": {"domain", "errors", "util", "service", "batch", "points", "reserve", "train",
            "launch", "memory", "profiles", "scaffold", "container", "backends", "board"},
    # the documented `abcitrain.spec.parse_spec` (README) re-exports the job side
    "spec": {"batch"},
    "__main__": {"cli"},
    # deprecated aliases of renamed modules, kept for one release
    "model": {"domain"},
    "models": {"memory"},
}
ANYONE = {"__version__"}

#: Modules that must stay pure: they build and parse, never run commands or keep state.
PURE = [
    "batch/spec.py", "batch/checks.py", "batch/directives.py", "batch/render.py",
    "profiles/loader.py", "backends/*.py", "reserve/rules.py", "reserve/planner.py",
    "reserve/jobfit.py", "backends/*/*.py", "memory/*.py", "train/config.py", "train/planner.py",
    "points/tariffs.py", "points/showpoint.py", "launch/commands.py",
]
IO_MODULES = {"subprocess", "sqlite3", "socket", "paramiko", "shutil", "tempfile", "urllib",
              "http", "abcitrain.transport", "abcitrain.batch.store", "abcitrain.points.ledger",
              "abcitrain.util.sqlitedb", "abcitrain.service"}


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, runtime_only: bool = False, package: Path = PACKAGE) -> Iterator[str]:
    """Absolute names of the modules (or module attributes) ``path`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    if runtime_only:      # imports under `if TYPE_CHECKING:` never run
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip |= {id(n) for b in node.body for n in ast.walk(b)}
    name = _module_name(path, package)
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            yield mod
            yield from (f"{mod}.{a.name}" for a in node.names)


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "abcitrain" and len(parts) > 1 else None


def _package_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Which top-level packages (or modules) of abcitrain each one imports."""
    graph: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        own = _package(_module_name(path, package))
        if own is None:       # abcitrain/__init__.py: the version, nothing imported
            continue
        for target in _imports(path, package=package):
            pkg = _package(target)
            if pkg is None or pkg == own:
                continue
            if (package / pkg).is_dir() or (package / f"{pkg}.py").exists() \
                    or pkg == "__version__":
                graph.setdefault(own, set()).add(pkg)
    return graph


def test_every_package_imports_only_what_its_layer_allows() -> None:
    wrong = {pkg: sorted(deps - ANYONE - ALLOWED.get(pkg, set()))
             for pkg, deps in _package_graph().items()}
    assert {pkg: deps for pkg, deps in wrong.items() if deps} == {}


def test_every_package_is_declared() -> None:
    found = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    found |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert found == set(ALLOWED), "declare the new package's allowed imports above"


def _may_import(path: Path) -> set[str] | None:
    """The packages a module docstring's "May import:" paragraph names (``name`` or
    ``name.sub``: the package counts), None when it has no such paragraph."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    m = re.search(r"May import:(.*?)(?:\n\s*\n|\Z)", doc, re.S)
    if m is None:
        return None
    return {name.split(".")[0] for name in re.findall(r"``([A-Za-z_.]+)``", m[1])}


def test_each_package_docstring_says_what_it_may_import() -> None:
    """Every package's docstring lists exactly the table's packages, so the words a reader
    sees and the rule this file enforces cannot drift apart."""
    said = {p.parent.name: _may_import(p) for p in PACKAGE.glob("*/__init__.py")}
    missing = sorted(pkg for pkg, names in said.items() if names is None)
    assert missing == [], f"no 'May import:' paragraph in {missing}"
    differ = {pkg: (sorted(names or ()), sorted(ALLOWED[pkg])) for pkg, names in said.items()
              if names != ALLOWED[pkg]}
    assert differ == {}, "docstring vs table (said, table)"


def test_the_docstring_reader_sees_a_paragraph(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('"""Intro ``store``.\n\nMay import: ``domain``, ``batch.store``\n(why).'
                     '\n\nLater ``other``.\n"""\n')
    assert _may_import(probe) == {"domain", "batch"}
    probe.write_text('"""No such paragraph."""\n')
    assert _may_import(probe) is None


def test_no_import_circle_between_packages() -> None:
    graph = _package_graph()

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    circles = sorted(pkg for pkg in graph if pkg in reach(pkg))
    assert circles == []


def _module_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Which modules of abcitrain each module imports (every import, also those inside
    functions and under TYPE_CHECKING: a circle is a circle to a reader too)."""
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for target in _imports(path, package=package):
            while target and target not in modules:      # module.attribute -> module
                target = target.rpartition(".")[0]
            if target and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_between_any_two_modules() -> None:
    """No circle anywhere, inside a package included (reserve.base <-> reserve.pbs was one,
    transport.hostkeys <-> transport.ssh another)."""
    assert _circles(_module_graph()) == []


def test_the_circle_finder_sees_a_circle_inside_a_package(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "abcitrain"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "backends" / "answers.py").write_text(
        (copy / "backends" / "answers.py").read_text() + "\n\ndef f():\n"
        "    from .base import Backend\n    return Backend\n")
    (circle,) = _circles(_module_graph(copy))
    assert {"abcitrain.backends.answers", "abcitrain.backends.base"} <= set(circle)


def _readme_where_things_are() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"### Where things are\n(.*?)(?=\n#{1,3} |\Z)", text, re.S)
    assert m, "README lost its 'Where things are' section"
    return m[1]


def test_readme_where_things_are_matches_the_tree() -> None:
    """Every path the section names exists, and every package of abcitrain is named."""
    section = _readme_where_things_are()
    paths = set(re.findall(r"`((?:abcitrain|tests|bench|templates|jobs|containers|docs)"
                           r"/[A-Za-z0-9_./*-]*)`", section))
    assert paths, "the section names no path"
    gone = sorted(p for p in paths if not list(ROOT.glob(p.rstrip("/"))))
    assert gone == [], f"README names paths that do not exist: {gone}"
    named = {p.split("/")[1] for p in paths if p.startswith("abcitrain/")}
    named = {n.removesuffix(".py") for n in named}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert sorted(packages - named) == [], "packages the README does not name"


@pytest.mark.parametrize("pattern", PURE)
def test_pure_modules_do_no_io(pattern: str) -> None:
    paths = sorted(PACKAGE.glob(pattern))
    assert paths, f"{pattern} matches no module: update PURE"
    for path in paths:
        bad = sorted({m for m in _imports(path, runtime_only=True)
                      if any(m == io or m.startswith(io + ".") for io in IO_MODULES)})
        assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """On a copy of the package with one bad import added inside a function, the reader
    finds it (so the tests above are not vacuous)."""
    import shutil

    copy = tmp_path / "abcitrain"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    probe = copy / "backends" / "probe.py"
    probe.write_text("def f():\n    from ..service import jobs\n    return jobs\n")
    assert "service" not in _package_graph()["backends"]
    assert "service" in _package_graph(copy)["backends"]
    assert "abcitrain.service" in set(_imports(probe, runtime_only=True, package=copy))


@pytest.mark.parametrize(("old", "new", "name", "told"), [
    ("abcitrain.model", "abcitrain.domain", "JobSpec", "abcitrain.domain"),
    ("abcitrain.models.peak", "abcitrain.memory.peak", "step_peak", "abcitrain.memory"),
    ("abcitrain.models.memory", "abcitrain.memory.states", "estimate", "memory.states"),
    ("abcitrain.api.jobs", "abcitrain.api.submission", "submit", "abcitrain.api.submission"),
])
def test_renamed_public_modules_still_import_and_warn(old: str, new: str, name: str,
                                                      told: str) -> None:
    """Code written against the old names keeps working for one release, and is told the new
    name (a DeprecationWarning, an error under -W error)."""
    import subprocess
    import sys

    probe = (f"import importlib\nold = importlib.import_module({old!r})\n"
             f"new = importlib.import_module({new!r})\n"
             f"assert getattr(old, {name!r}) is getattr(new, {name!r})\n")
    ok = subprocess.run([sys.executable, "-W", "default::DeprecationWarning", "-c", probe],
                        capture_output=True, text=True, check=False, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "DeprecationWarning" in ok.stderr and told in ok.stderr
    strict = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", probe],
                            capture_output=True, text=True, check=False, cwd=ROOT)
    assert strict.returncode != 0


def test_no_module_is_over_450_lines() -> None:
    """Split by responsibility well before a module becomes hard to read (STYLE.md)."""
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert long == {}
