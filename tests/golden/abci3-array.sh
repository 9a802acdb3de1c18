#!/bin/bash
#PBS -N llm-sft
#PBS -l walltime=02:30:00
#PBS -j oe
#PBS -J 1-4:1
#PBS -q rt_HF
#PBS -l select=2
#PBS -P gaa50000
#
# Rendered by abcitrain 0.1.0: job llm-sft for cluster abci3 (pbs).
# Edit the job spec and render again rather than editing this file.
set -euo pipefail
# When the job started and how long it may run (abcitrain launch stops training in time).
ABCITRAIN_JOB_START="$(date +%s)"
export ABCITRAIN_JOB_START ABCITRAIN_WALLTIME_S=9000

# The scheduler's variables under one set of names, the same on every cluster.
# PBS_JOBID of an array task is 1234[5].pbs1; the array's own id is 1234[].pbs1.
ABCITRAIN_JOB_ID="${PBS_JOBID:-}"
if [ -n "${PBS_ARRAY_INDEX:-}" ]; then ABCITRAIN_JOB_ID="${ABCITRAIN_JOB_ID/\[*\]/[]}"; fi
export ABCITRAIN_JOB_ID
export ABCITRAIN_JOB_NAME="${PBS_JOBNAME:-}"
export ABCITRAIN_ARRAY_INDEX="${PBS_ARRAY_INDEX:-}"
export ABCITRAIN_SUBMIT_DIR="${PBS_O_WORKDIR:-$PWD}"
# node-local disk (ABCI 3.0: $PBS_LOCALDIR on each node's SSD)
export ABCITRAIN_LOCALDIR="${PBS_LOCALDIR:-${TMPDIR:-/tmp}}"
# PBS_NODEFILE has one line per MPI rank; keep each host once, first host first.
abcitrain_hosts() { awk '!seen[$1]++ {print $1}' "${PBS_NODEFILE:-/dev/null}"; }
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
export ABCITRAIN_CLUSTER=abci3
export ABCITRAIN_RESOURCE=rt_HF
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
# submit: qsub JOB.sh
