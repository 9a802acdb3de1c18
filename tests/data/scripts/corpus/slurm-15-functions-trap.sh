#!/bin/bash
#SBATCH --nodes=1
#SBATCH --partition=gpu
#SBATCH --time=30
#SBATCH --error=logs/%j.err
#SBATCH --output=logs/%j.out

cleanup() {
  echo "cleaning $1"
  rm -f "$1"
}
trap 'cleanup scratch.lock' EXIT
touch scratch.lock
write_hostfile() {
  local slots=$1
  for host in $(scontrol show hostnames "$SLURM_JOB_NODELIST"); do
    printf '%s slots=%d\n' "$host" "$slots"
  done > hostfile
}
write_hostfile 8
deepspeed --hostfile hostfile --no_ssh_check main.py \
    --deepspeed_config ds_config.json
