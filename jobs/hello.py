"""Print what an abcitrain job sees: the same variables on PBS, Grid Engine, Slurm and local."""

import os
import socket
from pathlib import Path

NAMES = ("ABCITRAIN_CLUSTER", "ABCITRAIN_JOB_ID", "ABCITRAIN_JOB_NAME", "ABCITRAIN_ARRAY_INDEX",
         "ABCITRAIN_NNODES", "ABCITRAIN_MASTER_ADDR", "ABCITRAIN_GPUS_PER_NODE",
         "ABCITRAIN_SUBMIT_DIR")

print(os.environ.get("GREETING", "hello"), "on", socket.gethostname())
for name in NAMES:
    print(f"{name}={os.environ.get(name, '')}")
nodes = Path(os.environ["ABCITRAIN_NODEFILE"]).read_text().split()
print("nodes:", ", ".join(nodes))
