"""Throughput of the starter kit against the plain Hugging Face Trainer + DeepSpeed.

Both train the same model (Llama-shaped, built from a config), the same data, DeepSpeed
config and batch split, started the same way (`abcitrain launch`, one process per rank),
one after the other in this run. Reported per rank: tokens/s (median step time after
`--skip` warm-up steps) and model FLOPs utilisation: 6 x parameters x tokens per second (plus
the attention's 12 x layers x hidden x seq_len per token), over a peak measured in this run
(a large matmul; on a GPU its dense bf16 peak the same way). The target: the kit's
tokens/s at least 0.95 of the baseline's (it adds no overhead).

    python bench/kit_throughput.py [--steps 60] [--ranks 2] [--hidden 256] [--layers 4]
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

import yaml

ROOT = Path(__file__).resolve().parent.parent


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
    subprocess.run([*launch, "python", str(ROOT / "jobs/train.py"), "runs/bench/train.json"],
                   cwd=work, env=env, check=True, capture_output=True)
    kit = [json.loads(x)["step_time_s"] for x in (run / "metrics.jsonl").read_text().splitlines()
           if '"step_time_s"' in x]
    base_out = work / "baseline.json"
    subprocess.run([*launch, "python", str(ROOT / "bench/hf_trainer_baseline.py"),
                    "runs/bench/train.json", str(base_out)], cwd=work, env=env, check=True,
                   capture_output=True)
    hf = json.loads(base_out.read_text())["step_times"]
    plan = json.loads((run / "train.json").read_text())
    from abcitrain.models.shapes import from_hf_config
    shape = from_hf_config(model_dir / "config.json")
    tokens_per_step_rank = args.global_batch * args.seq_len / args.ranks
    flops_per_token = 6 * shape.params + 12 * shape.layers * shape.hidden * args.seq_len
    peak = peak_flops(args.precision)
    rows = []
    for name, times in (("abcitrain kit", kit), ("HF Trainer + DeepSpeed", hf)):
        step = statistics.median(times[args.skip:])
        tps = tokens_per_step_rank / step
        rows.append((name, step, tps, flops_per_token * tps / peak))
    print(f"model: {shape.params:,} parameters ({args.layers} x {args.hidden}), seq_len "
          f"{args.seq_len}, global batch {args.global_batch}, {args.ranks} ranks, ZeRO-"
          f"{plan['train']['zero']}, {args.precision}; {args.steps} steps, first {args.skip} "
          f"not timed; peak {peak / 1e9:.1f} GFLOP/s per rank (matmul, measured now)")
    print(f"{'trainer':24} {'step s':>8} {'tokens/s/rank':>14} {'MFU':>7}")
    for name, step, tps, mfu in rows:
        print(f"{name:24} {step:8.4f} {tps:14.1f} {mfu:7.1%}")
    ratio = rows[0][2] / rows[1][2]
    print(f"kit / baseline tokens/s: {ratio:.3f} (target >= 0.95)")
    return 0 if ratio >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
