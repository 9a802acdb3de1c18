#!/bin/bash
#SBATCH --job-name=llm-sft
#SBATCH --time=02:30:00
#SBATCH --output=logs/%x-%j.out
#SBATCH --partition=gpu
#SBATCH --nodes=2
#SBATCH --gres=gpu:8
#SBATCH --account=proj1
#
# Rendered by abcitrain 0.1.0: job llm-sft for cluster slurm (slurm).
# Edit the job spec and render again rather than editing this file.
set -euo pipefail
# When the job started and how long it may run (abcitrain launch stops training in time).
ABCITRAIN_JOB_START="$(date +%s)"
export ABCITRAIN_JOB_START ABCITRAIN_WALLTIME_S=9000

# The scheduler's variables under one set of names, the same on every cluster.
# An array task's SLURM_JOB_ID is its own; the id sbatch printed is SLURM_ARRAY_JOB_ID.
export ABCITRAIN_JOB_ID="${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-}}"
export ABCITRAIN_JOB_NAME="${SLURM_JOB_NAME:-}"
export ABCITRAIN_ARRAY_INDEX="${SLURM_ARRAY_TASK_ID:-}"
export ABCITRAIN_SUBMIT_DIR="${SLURM_SUBMIT_DIR:-$PWD}"
# node-local disk: the job's $TMPDIR where the site gives one
export ABCITRAIN_LOCALDIR="${TMPDIR:-/tmp}"
abcitrain_hosts() {
  if [ -n "${SLURM_JOB_NODELIST:-}" ]; then scontrol show hostnames "$SLURM_JOB_NODELIST"; fi
}
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
export ABCITRAIN_CLUSTER=slurm
export ABCITRAIN_RESOURCE=gpu
export ABCITRAIN_GPUS_PER_NODE=8
ABCITRAIN_NNODES="$(grep -c . "$ABCITRAIN_NODEFILE")"
ABCITRAIN_MASTER_ADDR="$(head -n 1 "$ABCITRAIN_NODEFILE")"
export ABCITRAIN_NNODES ABCITRAIN_MASTER_ADDR

cd -- "$ABCITRAIN_SUBMIT_DIR"
# Environment modules, virtualenvs and conda read unset variables: -u is relaxed around them.
set +u
if [ -f /etc/profile.d/modules.sh ]; then . /etc/profile.d/modules.sh; fi
module load cuda/12.6 hpcx/2.20
set -u
export HF_HOME='/scratch/hf cache'

python jobs/train.py --config configs/sft.yaml
# submit: sbatch --parsable JOB.sh
