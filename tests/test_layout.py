"""The package layout holds: each package imports only what its docstring allows, no two
packages import each other (directly or round a longer circle), and the pure parts import
nothing that does I/O.

Read from the source with ``ast`` (every import, also those inside functions, since the CLI
imports lazily), so a new import against the layering fails here before review.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "abcitrain"
BASE = {"domain", "errors", "util", "__version__"}

#: What each package may import besides BASE (its docstring says the same in words).
ALLOWED: dict[str, set[str]] = {
    "backends": set(),
    "transport": set(),
    "memory": set(),
    "profiles": set(),
    "localsched": set(),
    "launch": {"profiles"},
    "train": {"memory", "points"},
    "batch": {"profiles", "train", "backends"},
    "points": {"backends"},
    "reserve": {"backends", "points", "batch"},
    "scaffold": {"batch", "train", "container"},
    "container": {"batch"},
    "service": {"batch", "points", "reserve", "train", "backends", "transport", "profiles",
                "container"},
    "cli": {"service", "batch", "points", "reserve", "train", "launch", "memory", "profiles",
            "scaffold", "container"},
    # the Python API: what the CLI does, from code (and submitit's executor plugin)
    "api": {"service", "batch", "profiles", "points"},
    # the documented `abcitrain.spec.parse_spec` (README) re-exports the job side
    "spec": {"batch"},
    "__main__": {"cli"},
    # deprecated aliases of renamed modules, kept for one release
    "model": set(),
    "models": {"memory"},
}

#: Modules that must stay pure: they build and parse, never run commands or keep state.
PURE = [
    "batch/spec.py", "batch/checks.py", "batch/directives.py", "batch/render.py",
    "profiles/loader.py", "backends/*.py", "reserve/rules.py", "reserve/planner.py",
    "reserve/jobfit.py", "reserve/base.py", "reserve/pbs.py", "reserve/uge.py",
    "reserve/slurm.py", "memory/*.py", "train/config.py", "train/planner.py",
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
    wrong = {pkg: sorted(deps - BASE - ALLOWED.get(pkg, set()))
             for pkg, deps in _package_graph().items()}
    assert {pkg: deps for pkg, deps in wrong.items() if deps} == {}


def test_every_package_is_declared() -> None:
    found = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    found |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert found - BASE == set(ALLOWED), "declare the new package's allowed imports above"


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


def test_service_modules_do_not_import_each_other_in_a_circle() -> None:
    service = {p.stem: {t.rsplit(".", 1)[-1] for t in _imports(p)
                        if t.startswith("abcitrain.service.")}
               for p in (PACKAGE / "service").glob("*.py")}
    for mod, deps in service.items():
        for dep in deps & set(service):
            assert mod not in service[dep], f"service.{mod} and service.{dep} import each other"


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
