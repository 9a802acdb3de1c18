"""Regenerate sft.jsonl: small prompt/response pairs about cluster arithmetic (sample data).

Run from the checkout: python jobs/data/make_sft.py. The pairs are computed, so every
response is right; they exist to show the SFT format and loss masking, not to teach a model.
"""

import json
import random
from pathlib import Path

rng = random.Random(7)  # noqa: S311 (sample data, not secrets)
rows = []
for _ in range(96):
    kind = rng.choice(["points", "batch", "nodes"])
    if kind == "points":
        nodes, hours, rate = rng.randint(1, 8), rng.randint(1, 12), rng.choice([1.0, 3.0, 7.5])
        prompt = (f"How many points does a job on {nodes} nodes for {hours} hours cost at "
                  f"{rate} points per node-hour?")
        response = f"{nodes} x {hours} x {rate} = {nodes * hours * rate:g} points."
    elif kind == "batch":
        micro, gpus, accum = rng.choice([1, 2, 4]), rng.choice([8, 16, 32]), rng.randint(1, 8)
        prompt = (f"What is the global batch with micro-batch {micro}, {gpus} GPUs and "
                  f"{accum} accumulation steps?")
        response = f"{micro} x {gpus} x {accum} = {micro * gpus * accum} sequences."
    else:
        gpus, per = rng.choice([8, 16, 32, 64]), rng.choice([4, 8])
        prompt = f"How many nodes hold {gpus} GPUs with {per} GPUs per node?"
        response = f"{gpus} / {per} = {gpus // per} nodes."
    rows.append({"prompt": f"Question: {prompt}\nAnswer: ", "response": response})

out = Path(__file__).with_name("sft.jsonl")
out.write_text("".join(json.dumps(r) + "\n" for r in rows))
print(f"wrote {len(rows)} examples to {out}")
