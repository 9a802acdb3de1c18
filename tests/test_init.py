"""``abcitrain init``: a team's project that plans (and, on `local`, runs) at once.

Singularity cannot be installed here: the container definition is checked as text (its
sections and base image), not built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, cli


def test_init_for_abci3_scaffolds_specs_that_plan(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = cli("init", "team", "--cluster", "abci3").output
    assert "created team for abci3 (rt_HF)" in out
    # the next step it suggests works now: the model first (plan reads its config.json),
    # and a command that runs before any download
    assert "next: put the base model in team/models/base" in out
    suggested = out.split("until then: abcitrain ")[1].split(" shows")[0].split()
    assert cli(*suggested).exit_code == 0
    root = tmp_path / "team"
    for rel in ("jobs/cpt.yaml", "jobs/sft.yaml", "jobs/train.py", "data/sft.jsonl",
                "data/cpt/sample.txt", "containers/train.def", "README.md", ".gitignore"):
        assert (root / rel).is_file(), rel
    spec = yaml.safe_load((root / "jobs" / "sft.yaml").read_text())
    assert (spec["cluster"], spec["resource"], spec["nodes"]) == ("abci3", "rt_HF", "auto")
    assert spec["group"] == "YOUR_GROUP" and spec["train"]["model"] == "models/base"
    readme = (root / "README.md").read_text()
    assert "huggingface-cli download" in readme and "YOUR_GROUP" in readme
    definition = (root / "containers" / "train.def").read_text()
    assert "Bootstrap: docker\nFrom: nvcr.io/nvidia/pytorch:" in definition
    for section in ("%files", "%environment", "%post", "%test", "%labels", "%help"):
        assert f"\n{section}\n" in definition, section
    assert "--nv" in definition and "HF_HUB_OFFLINE=1" in definition
    # before the download, plan says what is missing; with the model's config.json (what a
    # download brings besides the weights) it plans Llama-2 7B's shape
    assert "cannot plan sft" in cli("plan", "--dry-run", str(root / "jobs" / "sft.yaml"),
                                    ok=False).output
    (root / "models" / "base").mkdir()
    (root / "models" / "base" / "config.json").write_text(json.dumps({
        "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 32, "intermediate_size": 11008, "vocab_size": 32000}))
    monkeypatch.chdir(root)
    planned = json.loads(cli("plan", "--json", "--dry-run", "jobs/sft.yaml").output)
    assert planned["params"] == 6_738_415_616 and planned["chosen"]["nodes"] == 1


def test_init_for_local_uses_the_cpu_and_the_tiny_model(tmp_path: Path) -> None:
    cli("init", "mine", "--cluster", "local")
    root = tmp_path / "mine"
    spec = yaml.safe_load((root / "jobs" / "cpt.yaml").read_text())
    assert spec["resource"] == "cpu" and spec["train"]["ranks_per_node"] == 2
    assert (root / "models" / "tiny-llama" / "config.json").is_file()
    assert "python:3.11-slim" in (root / "containers" / "train.def").read_text()


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = cli("init", "busy", "--cluster", "local", ok=False)
    assert result.exit_code == 2 and "is not empty" in result.output
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_the_shipped_container_definitions_are_current() -> None:
    from abcitrain.scaffold.init import container_definition

    for flavour, gpu in (("gpu", True), ("cpu", False)):
        shipped = (ROOT / "containers" / f"train-{flavour}.def").read_text()
        assert shipped == container_definition("abcitrain-kit", gpu), (
            f"containers/train-{flavour}.def is stale: regenerate it with "
            "abcitrain.scaffold.init.container_definition")
    cpu = (ROOT / "containers" / "train-cpu.def").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu " in cpu
