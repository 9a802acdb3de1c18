"""Throughput of the starter kit against the plain Hugging Face Trainer + DeepSpeed.

Both train the same model (Llama-shaped, built from a config), the same data, DeepSpeed
config and batch split, started the same way (`abcitrain launch`, one process per rank),
alternating (kit, baseline, kit, baseline, ... `--repeats` times each) in this run. Both
sides are timed over the same span: from the end of one optimizer step to the end of the next
(batch fetch, forward, backward, step and the trainer's own bookkeeping), read from the
kit's per-step timestamps and from the Trainer's step-end callback. Reported per rank:
tokens/s (the median over repeats of each run's median step after `--skip` warm-up steps,
with the spread between repeats) and model FLOPs utilisation: 6 x parameters x tokens per
second (plus the attention's 12 x layers x hidden x seq_len per token), over a peak measured
in this run (a large matmul; on a GPU its dense bf16 peak the same way). The target: the kit's
tokens/s at least the baseline's (issue: performance; it adds no overhead).

    python bench/kit_throughput.py [--steps 60] [--ranks 2] [--hidden 256] [--layers 4]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
#: The kit's tokens/s over the baseline's, at least.
TARGET = 1.0


def peak_flops(dtype_name: str) -> float:
    import torch
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    n = 8192 if cuda else 1024
    a = torch.randn(n, n, dtype=dtype, device="cuda" if cuda else "cpu")
    b = torch.randn_like(a)
    torch.set_num_threads(1)          # each rank runs with OMP_NUM_THREADS=1 on CPU
    for _ in range(3):
        a @ b
    reps = 20 if cuda else 5
    if cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--skip", type=int, default=10)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--global-batch", type=int, default=8)
    ap.add_argument("--zero", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="One JSON line at the end.")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="abcitrain-bench."))
    model_dir = work / "model"
    model_dir.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model_dir / name).write_bytes((ROOT / "jobs/models/tiny-llama" / name).read_bytes())
    config = json.loads((ROOT / "jobs/models/tiny-llama/config.json").read_text())
    config.update(hidden_size=args.hidden, num_hidden_layers=args.layers,
                  intermediate_size=args.hidden * 11 // 4, num_attention_heads=args.hidden // 64,
                  num_key_value_heads=args.hidden // 64, head_dim=64)
    (model_dir / "config.json").write_text(json.dumps(config))
    spec = {"name": "bench", "cluster": "local", "resource": "cpu", "walltime": "1:00:00",
            "train": {"mode": "cpt", "model": str(model_dir), "init": "random",
                      "data": str(ROOT / "jobs/data/cpt.txt"), "seq_len": args.seq_len,
                      "global_batch": args.global_batch, "steps": args.steps,
                      "zero": args.zero, "offload": "none", "precision": args.precision,
                      "ranks_per_node": args.ranks, "export": False, "lr": 1e-4}}
    (work / "bench.yaml").write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCITRAIN_")}
    env["ABCITRAIN_DATA_DIR"] = str(work / "home")
    abcitrain = [sys.executable, "-m", "abcitrain"]
    subprocess.run([*abcitrain, "plan", "bench.yaml"], cwd=work, env=env, check=True,
                   capture_output=True)
    launch = [*abcitrain, "launch", "--nproc-per-node", str(args.ranks), "--"]
    run = work / "runs" / "bench"

    def kit_steps() -> list[float]:
        for old in ("metrics.jsonl", "state.json"):                  # a fresh run each time
            (run / old).unlink(missing_ok=True)
        shutil.rmtree(run / "checkpoints", ignore_errors=True)
        subprocess.run([*launch, "python", str(ROOT / "jobs/train.py"), "runs/bench/train.json"],
                       cwd=work, env=env, check=True, capture_output=True)
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        ends = [r["time"] for r in rows if "step_time_s" in r]
        assert len(ends) == args.steps, f"the kit trained {len(ends)} of {args.steps} steps"
        return [b - a for a, b in itertools.pairwise(ends)]

    def hf_steps() -> list[float]:
        base_out = work / "baseline.json"
        base_out.unlink(missing_ok=True)
        subprocess.run([*launch, "python", str(ROOT / "bench/hf_trainer_baseline.py"),
                        "runs/bench/train.json", str(base_out)], cwd=work, env=env, check=True,
                       capture_output=True)
        ends = json.loads(base_out.read_text())["step_ends"]
        assert len(ends) == args.steps, f"the Trainer ran {len(ends)} of {args.steps} steps"
        return [b - a for a, b in itertools.pairwise(ends)]

    medians: dict[str, list[float]] = {"abcitrain kit": [], "HF Trainer + DeepSpeed": []}
    for _ in range(args.repeats):                      # interleaved: drift hits both sides
        medians["abcitrain kit"].append(statistics.median(kit_steps()[args.skip:]))
        medians["HF Trainer + DeepSpeed"].append(statistics.median(hf_steps()[args.skip:]))
    plan = json.loads((run / "train.json").read_text())
    from abcitrain.memory.shapes import from_hf_config
    shape = from_hf_config(model_dir / "config.json")
    tokens_per_step_rank = args.global_batch * args.seq_len / args.ranks
    flops_per_token = 6 * shape.params + 12 * shape.layers * shape.hidden * args.seq_len
    peak = peak_flops(args.precision)
    rows = []
    for name, runs in medians.items():
        step = statistics.median(runs)
        tps = tokens_per_step_rank / step
        rows.append((name, step, tps, flops_per_token * tps / peak,
                     (max(runs) - min(runs)) / step))
    print(f"model: {shape.params:,} parameters ({args.layers} x {args.hidden}), seq_len "
          f"{args.seq_len}, global batch {args.global_batch}, {args.ranks} ranks, ZeRO-"
          f"{plan['train']['zero']}, {args.precision}; {args.steps} steps, first {args.skip} "
          f"not timed; {args.repeats} runs of each, interleaved; peak {peak / 1e9:.1f} GFLOP/s "
          "per rank (matmul, measured now)")
    print(f"{'trainer':24} {'step s':>8} {'tokens/s/rank':>14} {'MFU':>7} {'spread':>7}")
    for name, step, tps, mfu, spread in rows:
        print(f"{name:24} {step:8.4f} {tps:14.1f} {mfu:7.1%} {spread:7.1%}")
    ratio = rows[0][2] / rows[1][2]
    print(f"kit / baseline tokens/s: {ratio:.3f} (target >= {TARGET})")
    if args.json:
        print(json.dumps({"metric": "kit tokens/s", "kit_tps": rows[0][2],
                          "baseline_tps": rows[1][2], "ratio": ratio,
                          "spread": max(rows[0][4], rows[1][4]), "target": TARGET,
                          "ok": ratio >= TARGET}))
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
