"""Benchmark: CLI cold start of `abcitrain render` against `import click, jinja2, yaml`.

Login nodes read Python from shared file systems, where every import costs. Target: render
within 1.5x of the baseline measured in the same run, and none of torch, deepspeed, paramiko,
matplotlib imported. Runs are interleaved and the median of each is compared.

    python bench/cold_start.py [--runs 21]

Exit status 1 when a target is missed. Not a timed test: run it by hand or in CI for the record.

abcitrain's modules are compiled to bytecode first (`compileall`), as `pip install` does
for a wheel: where PYTHONDONTWRITEBYTECODE is set (this machine's shell sets it), an
editable install would otherwise compile every module again in every run. `abcitrain` is
run as typed, through the console script pip installed (bench/typed.py); `python -m
abcitrain.cli` is timed beside it for the record.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from typed import abcitrain_argv

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "jobs" / "hello-local.yaml"
HEAVY = ("torch", "deepspeed", "paramiko", "matplotlib", "transformers", "pydantic")
TARGET = 1.5


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env, cwd=ROOT)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--json", action="store_true", help="One JSON line at the end.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        # the bytecode a wheel's install writes (see the module docstring)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "abcitrain")],
                       check=True, stdout=subprocess.DEVNULL)
        env = {**os.environ, "ABCITRAIN_DATA_DIR": home, "ABCITRAIN_CONFIG_DIR": home}
        base_argv = [sys.executable, "-c", "import click, jinja2, yaml"]
        render_argv = [*abcitrain_argv(), "render", str(SPEC)]
        # the same through `python -m`, for the record (earlier figures were taken so)
        module_argv = [sys.executable, "-m", "abcitrain.cli", "render", str(SPEC)]
        for argv in (base_argv, render_argv, module_argv):   # warm the page cache, .pyc
            _time(argv, env)
        base, render, module = [], [], []
        for _ in range(args.runs):
            base.append(_time(base_argv, env))
            render.append(_time(render_argv, env))
            module.append(_time(module_argv, env))
        imports = subprocess.run([sys.executable, "-X", "importtime", *render_argv[1:]],
                                 capture_output=True, text=True, env=env, cwd=ROOT).stderr
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in imports.splitlines()
              if line.startswith("import time:")}
    heavy = sorted(set(HEAVY) & loaded)
    b, r = statistics.median(base), statistics.median(render)
    ratio = r / b
    print(f"baseline (import click, jinja2, yaml): median {b * 1000:.1f} ms over {args.runs}")
    print(f"abcitrain render:                      median {r * 1000:.1f} ms over {args.runs}")
    print(f"ratio: {ratio:.2f} (target <= {TARGET})")
    m = statistics.median(module)
    print(f"(python -m abcitrain.cli render:       median {m * 1000:.1f} ms, "
          f"{m / b:.2f}x: through runpy, which the console script does not use)")
    print(f"heavy modules imported: {', '.join(heavy) or 'none'}")
    if args.json:
        print(json.dumps({"metric": "render cold start", "baseline_ms": b * 1000,
                          "abcitrain_ms": r * 1000, "ratio": ratio, "target": TARGET,
                          "module_ms": m * 1000,
                          "spread": (max(render) - min(render)) / r, "heavy": heavy,
                          "ok": ratio <= TARGET and not heavy}))
    return 0 if ratio <= TARGET and not heavy else 1


if __name__ == "__main__":
    raise SystemExit(main())
