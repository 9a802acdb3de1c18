#!/bin/bash
#LOCAL --name llm-sft
#LOCAL --walltime 9000
#
# Rendered by abcitrain 0.1.0: job llm-sft for cluster local (local).
# Edit the job spec and render again rather than editing this file.
set -euo pipefail
# When the job started and how long it may run (abcitrain launch stops training in time).
ABCITRAIN_JOB_START="$(date +%s)"
export ABCITRAIN_JOB_START ABCITRAIN_WALLTIME_S=9000

# The scheduler's variables under one set of names, the same on every cluster.
export ABCITRAIN_JOB_ID="${LOCAL_JOB_ID:-}"
export ABCITRAIN_JOB_NAME="${LOCAL_JOB_NAME:-}"
export ABCITRAIN_ARRAY_INDEX="${LOCAL_ARRAY_INDEX:-}"
export ABCITRAIN_SUBMIT_DIR="${LOCAL_SUBMIT_DIR:-$PWD}"
export ABCITRAIN_LOCALDIR="${TMPDIR:-/tmp}"
abcitrain_hosts() { if [ -n "${LOCAL_NODEFILE:-}" ]; then cat "$LOCAL_NODEFILE"; fi; }
# This submission, stamped by `abcitrain submit`: the job notes its id under it as it starts,
# so that a submission whose answer was lost (a cut connection) finds this job, even once it
# has left the queue, instead of making a second one.
ABCITRAIN_SUBMISSION=unsubmitted
if [ "$ABCITRAIN_SUBMISSION" != unsubmitted ] && [ -n "${ABCITRAIN_JOB_ID:-}" ]; then
  ( umask 077; mkdir -p -- "$ABCITRAIN_SUBMIT_DIR/.abcitrain/started" &&
    printf '%s\n' "$ABCITRAIN_JOB_ID" > "$ABCITRAIN_SUBMIT_DIR/.abcitrain/started/$ABCITRAIN_SUBMISSION"
  ) 2>/dev/null || true
fi
ABCITRAIN_NODEFILE="$(mktemp "${TMPDIR:-/tmp}/abcitrain-nodes.XXXXXX")"
export ABCITRAIN_NODEFILE
trap 'rm -f -- "$ABCITRAIN_NODEFILE"' EXIT
abcitrain_hosts > "$ABCITRAIN_NODEFILE"
if [ ! -s "$ABCITRAIN_NODEFILE" ]; then hostname > "$ABCITRAIN_NODEFILE"; fi
export ABCITRAIN_CLUSTER=local
export ABCITRAIN_RESOURCE=cpu
export ABCITRAIN_GPUS_PER_NODE=0
ABCITRAIN_NNODES="$(grep -c . "$ABCITRAIN_NODEFILE")"
ABCITRAIN_MASTER_ADDR="$(head -n 1 "$ABCITRAIN_NODEFILE")"
export ABCITRAIN_NNODES ABCITRAIN_MASTER_ADDR

cd -- "$ABCITRAIN_SUBMIT_DIR"
export HF_HOME='/scratch/hf cache'

python jobs/train.py --config configs/sft.yaml
# submit: PYTHON -m abcitrain.localsched submit JOB.sh
