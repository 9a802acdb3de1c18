"""Model shapes for memory estimates: presets, a Hugging Face config.json, or a raw count.

Only the numbers the estimator needs are kept; nothing here imports torch or transformers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError, Problem
from ..util.yamlio import load_yaml_file

PRESETS_FILE = Path(__file__).parent / "presets.yaml"


@dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer's size and shape (shape fields are 0 when unknown)."""

    name: str
    params: int                 # the count memory is estimated for
    layers: int = 0
    hidden: int = 0
    heads: int = 0
    kv_heads: int = 0
    intermediate: int = 0
    vocab: int = 0
    tied_embeddings: bool = False
    #: Where ``params`` came from: "named size", "architecture" or "given".
    params_source: str = "given"

    @property
    def has_shape(self) -> bool:
        """True when the layer shape is known (activations can be estimated)."""
        return bool(self.layers and self.hidden and self.heads)

    def architecture_params(self) -> int | None:
        """The exact parameter count of a Llama-style model of this shape (embeddings, per
        layer q/k/v/o projections, a gated MLP and two RMSNorms, a final norm, the LM head)."""
        if not (self.has_shape and self.intermediate and self.vocab):
            return None
        head_dim = self.hidden // self.heads
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * self.kv_heads * head_dim
        mlp = 3 * self.hidden * self.intermediate
        per_layer = attention + mlp + 2 * self.hidden
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return embeddings + self.layers * per_layer + self.hidden

    def largest_layer_params(self) -> int:
        """Parameters of the largest single module (an embedding or the MLP's projection),
        which ZeRO-3 gathers whole on every GPU."""
        if not self.has_shape:
            return 0
        return max(self.vocab * self.hidden, self.hidden * self.intermediate)


def presets() -> dict[str, dict[str, Any]]:
    """The shipped model presets by name."""
    data: dict[str, dict[str, Any]] = load_yaml_file(PRESETS_FILE)
    return data


#: A parameter count past this is a typo, not a model (and overflows float arithmetic).
MAX_PARAMS = 10**15


def resolve(model: str, exact: bool = False) -> ModelShape:
    """A preset name, a config.json path (or a folder holding one), or a raw parameter count
    such as ``7e9``, ``6.7B`` or ``350M``. ``exact`` uses a preset's architecture count
    instead of its named size."""
    table = presets()
    key = model.lower()
    if key in table:
        d = table[key]
        shape = ModelShape(name=key, params=int(float(d["params"])), layers=d["layers"],
                           hidden=d["hidden"], heads=d["heads"], kv_heads=d["kv_heads"],
                           intermediate=d["intermediate"], vocab=d["vocab"],
                           params_source="named size")
        counted = shape.architecture_params()
        if exact and counted:
            shape = replace(shape, params=counted, params_source="architecture")
        return shape
    count = parse_count(model)
    if count is not None:
        if not 1 <= count <= MAX_PARAMS:
            raise InputError(f"unknown model {model!r}", [Problem("model", (
                f"{count:.3g} parameters: give a count from 1 to {MAX_PARAMS:.0e} (the largest "
                "models trained today have about 2e12)"))])
        return ModelShape(name=model, params=count)
    path = Path(model)
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return from_hf_config(path)
    raise InputError(f"unknown model {model!r}", [Problem("model", (
        f"not a preset ({', '.join(sorted(table))}), a parameter count (7e9, 6.7B, 350M) or "
        "a config.json (or a folder with one)"))])


def parse_count(text: str) -> int | None:
    """``7e9``, ``6.7B``, ``350M``, ``125000000`` as a whole count; None otherwise."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?(?:[eE][0-9]+)?)\s*([kKmMbBtT]?)\s*", text)
    if not m:
        return None
    scale = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}[m[2].lower()]
    value = int(float(m[1]) * scale)
    return value if value > 0 else None


def from_hf_config(path: Path) -> ModelShape:
    """A shape from a Hugging Face ``config.json`` (Llama, Mistral and alike)."""
    try:
        d = json.loads(path.read_text())
        hidden, layers, heads = (int(d["hidden_size"]), int(d["num_hidden_layers"]),
                                 int(d["num_attention_heads"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read {path}", [Problem("model", (
            f"a Hugging Face config.json with hidden_size, num_hidden_layers and "
            f"num_attention_heads is needed ({exc})"))]) from None
    shape = ModelShape(
        name=str(d.get("_name_or_path") or path.parent.name), params=0, layers=layers,
        hidden=hidden, heads=heads, kv_heads=int(d.get("num_key_value_heads") or heads),
        intermediate=int(d.get("intermediate_size") or 4 * hidden),
        vocab=int(d.get("vocab_size") or 0),
        tied_embeddings=bool(d.get("tie_word_embeddings", False)),
        params_source="architecture")
    return replace(shape, params=shape.architecture_params() or 0)
