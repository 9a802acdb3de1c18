"""The compiled-template cache (abcitrain.util.templatecache): used, private, and never in
the way of a render."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from abcitrain.util import templatecache


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache folder of this test's own (the cache is chosen once per process)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    templatecache.bytecode_cache.cache_clear()
    yield tmp_path / "cache" / "abcitrain" / "jinja2"
    templatecache.bytecode_cache.cache_clear()


def _render(folder: Path, text: str) -> str:
    (folder / "t.j2").write_text(text)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)),
                             bytecode_cache=templatecache.bytecode_cache())
    return env.get_template("t.j2").render(x=1)


def test_a_template_is_compiled_once_and_again_when_it_changes(fresh: Path,
                                                             tmp_path: Path) -> None:
    assert _render(tmp_path, "a{{ x }}") == "a1"
    cached = list(fresh.iterdir())
    assert len(cached) == 1 and fresh.stat().st_mode & 0o077 == 0
    assert _render(tmp_path, "a{{ x }}") == "a1"            # from the cache
    assert _render(tmp_path, "b{{ x }}") == "b1"            # edited: compiled again


def test_a_folder_others_can_write_is_not_trusted(fresh: Path) -> None:
    fresh.mkdir(parents=True)
    fresh.chmod(0o777)
    assert templatecache.bytecode_cache() is None


def test_an_unwritable_cache_never_fails_a_render(fresh: Path, tmp_path: Path) -> None:
    assert templatecache.bytecode_cache() is not None
    fresh.rmdir()
    fresh.write_text("a file where the folder was")    # every read and write now fails
    assert _render(tmp_path, "c{{ x }}") == "c1"
    assert _render(tmp_path, "c{{ x }}") == "c1"
