"""Every command's --json output against its schema in docs/json.md (read from the page), for
success and for refusal; and every command that has --json is covered here or by a live
test that validates with the same schemas (reserve list/show: test_pbs_live.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from conftest import ROOT, cli, wait_for
from harness.jsonschemas import schemas, validate

#: Commands with --json and where their output is validated.
LIVE_ONLY = {"reserve list", "reserve show"}          # need a scheduler's reservations


def _json(*args: str, code: int = 0) -> Any:
    result = cli(*args, ok=None)
    assert result.exit_code == code, (args, result.output)
    return json.loads(result.stdout)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    big = {"name": "big", "cluster": "abci3", "resource": "rt_HF", "group": "gaa50000",
           "nodes": 2, "walltime": "2:00:00", "command": ["python", "train.py"]}
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(big))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(dict(big, nodes=999)))
    (tmp_path / "here.yaml").write_text(yaml.safe_dump({
        "name": "here", "cluster": "local", "resource": "cpu", "walltime": "0:05:00",
        "command": ["true"]}))
    (tmp_path / "kit.yaml").write_text(yaml.safe_dump({
        "name": "kit", "cluster": "local", "resource": "cpu", "walltime": "0:20:00",
        "nodes": "auto", "train": {
            "mode": "sft", "model": str(ROOT / "jobs/models/tiny-llama"), "init": "random",
            "data": str(ROOT / "jobs/data/sft.jsonl"), "seq_len": 48, "global_batch": 8,
            "steps": 6, "precision": "fp32", "ranks_per_node": 2}}))
    return tmp_path


def test_every_command_with_json_is_covered() -> None:
    from abcitrain.cli.app import cli as group

    found = set()

    def walk(command: click.Command, path: str) -> None:
        if any("--json" in p.opts for p in command.params if isinstance(p, click.Option)):
            found.add(path)             # a group's own output too (`points`, `clusters`)
        if isinstance(command, click.Group):
            for name in command.list_commands(click.Context(command)):
                sub = command.get_command(click.Context(command), name)
                assert sub is not None
                walk(sub, f"{path} {name}".strip())

    walk(group, "")
    covered = {"check", "submit", "status", "clusters", "memory", "points", "points quote",
               "reserve plan", "plan", "board"} | LIVE_ONLY
    assert found == covered, found ^ covered
    assert set(schemas()) == {"error", "check", "submit", "status", "clusters", "memory",
                              "points", "points-quote", "reserve-plan", "reservation", "plan",
                              "board"}


def test_each_command_prints_what_its_schema_says(project: Path) -> None:
    validate("check", _json("check", "--json", "ok.yaml"))
    validate("check", _json("check", "--json", "bad.yaml", code=2))
    validate("submit", _json("submit", "--dry-run", "--json", "ok.yaml"))
    validate("submit", _json("submit", "--json", "bad.yaml", code=2))
    validate("clusters", _json("clusters", "--json"))
    validate("board", _json("board", "--group", "gaa50000", "--json"))
    validate("error", _json("board", "--json", code=2))
    validate("memory", _json("memory", "llama2-7b", "--json"))
    validate("error", _json("memory", "nosuch", "--json", code=2))
    validate("points-quote", _json("points", "quote", "ok.yaml", "--json"))
    validate("error", _json("points", "quote", "bad.yaml", "--json", code=2))
    validate("reserve-plan", _json("reserve", "plan", "--cluster", "abci3", "--type", "rt_HF",
                                   "--nodes", "2", "--days", "1", "--start", "2030-06-03",
                                   "--json"))
    validate("reserve-plan", _json("reserve", "plan", "--cluster", "abci3", "--type",
                                   "rt_HF", "--need-gpu-hours", "2000", "--start",
                                   "2030-06-03", "--json"))
    validate("plan", _json("plan", "kit.yaml", "--dry-run", "--json"))
    # a chain: check and quote in the same shapes, with its stages
    (project / "chain.yaml").write_text(yaml.safe_dump({
        "name": "pipe", "cluster": "abci3", "resource": "rt_HF", "group": "gaa50000",
        "walltime": 600, "stages": [{"name": "prep", "command": ["true"]},
                                    {"name": "train", "command": ["true"]}]}))
    chain = _json("check", "--json", "chain.yaml")
    validate("check", chain)
    assert chain["charge_at_walltime"] == "2.5000" and len(chain["stages"]) == 2
    validate("points-quote", _json("points", "quote", "chain.yaml", "--json"))
    # a real job on the local scheduler: its submission, its status, its charge
    sub = _json("submit", "--json", "here.yaml")
    validate("submit", sub)
    wait_for(lambda: _json("status", "--json")[0]["state"] == "COMPLETED", 60, "the job")
    rows = _json("status", "--json")
    validate("status", rows)
    assert rows[0]["job_id"] == sub["job_id"]
    validate("points", _json("points", "--json"))
