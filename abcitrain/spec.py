"""The documented home of ``parse_spec`` and ``load_spec`` (README: "The same spec in
Python"); the job side itself lives in ``abcitrain.batch``."""

from .batch.spec import load_spec, parse_spec

__all__ = ["load_spec", "parse_spec"]
