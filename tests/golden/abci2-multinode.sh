#!/bin/bash
#$ -N llm-sft
#$ -l h_rt=02:30:00
#$ -S /bin/bash
#$ -cwd
#$ -j y
#$ -hold_jid 12345
#$ -l rt_F=4
#$ -l USE_SSH=1
#$ -v SSH_PORT=2299
#
# Rendered by abcitrain 0.1.0: job llm-sft for cluster abci2 (uge).
# Edit the job spec and render again rather than editing this file.
set -euo pipefail
# When the job started and how long it may run (abcitrain launch stops training in time).
ABCITRAIN_JOB_START="$(date +%s)"
export ABCITRAIN_JOB_START ABCITRAIN_WALLTIME_S=9000

# The scheduler's variables under one set of names, the same on every cluster.
export ABCITRAIN_JOB_ID="${JOB_ID:-}"
export ABCITRAIN_JOB_NAME="${JOB_NAME:-}"
ABCITRAIN_ARRAY_INDEX="${SGE_TASK_ID:-}"
if [ "$ABCITRAIN_ARRAY_INDEX" = undefined ]; then ABCITRAIN_ARRAY_INDEX=""; fi
export ABCITRAIN_ARRAY_INDEX
export ABCITRAIN_SUBMIT_DIR="${SGE_O_WORKDIR:-$PWD}"
# node-local disk (ABCI 2.0: $SGE_LOCALDIR on each node's SSD)
export ABCITRAIN_LOCALDIR="${SGE_LOCALDIR:-${TMPDIR:-/tmp}}"
# ABCI lists the hosts in $SGE_JOB_HOSTLIST; a stock Grid Engine in the PE's $PE_HOSTFILE.
abcitrain_hosts() {
  if [ -n "${SGE_JOB_HOSTLIST:-}" ] && [ -f "$SGE_JOB_HOSTLIST" ]; then
    awk '!seen[$1]++ {print $1}' "$SGE_JOB_HOSTLIST"
  elif [ -n "${PE_HOSTFILE:-}" ] && [ -f "$PE_HOSTFILE" ]; then
    awk '!seen[$1]++ {print $1}' "$PE_HOSTFILE"
  fi
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
export ABCITRAIN_CLUSTER=abci2
export ABCITRAIN_RESOURCE=rt_F
export ABCITRAIN_GPUS_PER_NODE=4
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
# submit: qsub -terse -g gaa50000 JOB.sh
