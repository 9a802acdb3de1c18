"""The starter kit's training script: one process per rank, started by `abcitrain launch`.

    abcitrain launch -- python jobs/train.py runs/NAME/train.json

`abcitrain plan` (and `submit`, which plans first) writes train.json and ds_config.json into
the run folder; this script trains CPT or SFT as they say, resumes from the newest
checkpoint, stops cleanly on the walltime signal and exports the model at the end. The loop
lives in abcitrain.train.trainer; copy it here and edit it when your team needs a change.
"""

import os
import sys
from pathlib import Path

# Compute nodes often have no internet: never let Hugging Face try to download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Without a GPU DeepSpeed falls back to its CPU accelerator; saying so silences a warning.
if not Path("/dev/nvidia0").exists() and "DS_ACCELERATOR" not in os.environ:
    os.environ["DS_ACCELERATOR"] = "cpu"

from abcitrain.train.ending import end_process
from abcitrain.train.trainer import train

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: train.py RUN_FOLDER/train.json")
    train(Path(sys.argv[1]))
    # The run is saved and the process group gone: leave without the interpreter's teardown,
    # where a rare race in torch's C++ threads can abort a rank that finished (see ending.py)
    end_process(0)
