#!/bin/bash
#PBS -P gaa50000
#PBS -q rt_HF
#PBS -l select=1:ncpus=192:ngpus=8
#PBS -l walltime=02:00:00
#PBS -N 0162_flip_diag
#PBS -j oe
#PBS -o logs/
set -euxo pipefail
echo "JOB_ID=$PBS_JOBID"
cd "$PBS_O_WORKDIR"

OUT="${OUT:-output/run}"
STEP="${STEP:-step_675}"

module purge
module load cuda/12.6/12.6.1
module load python/3.12/3.12.9
uv sync --python 3.12
export VIRTUAL_ENV="$PWD/.venv"; export PATH="$VIRTUAL_ENV/bin:$PATH"
export HF_HUB_OFFLINE=1

run() { # heldout idx label
  echo "#### $3 ($(basename "$1") idx=$2)"
  uv run python eval.py --model "$OUT/$STEP" --heldout "$1" --idx "$2" \
      || echo "eval failed: $3"
}
run data/indist.parquet 0 "in-dist"
run data/ood.parquet 2 "ood"
