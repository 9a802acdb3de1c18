#!/usr/bin/env bash
#SBATCH --job-name=ddp
#SBATCH --nodes=2
#SBATCH --partition=gpu
#SBATCH --gres=gpu:8
#SBATCH --exclusive
#SBATCH --time=04:00:00
#SBATCH --cpus-per-task=8
#SBATCH --output=logs/%x-%j.out
#####SBATCH --mem=0
set -euo pipefail

root=$(cd -- "$(dirname -- "$PWD/x")" &> /dev/null && pwd -P)
RANK_ZERO_NODE=$(scontrol show hostnames ${SLURM_JOB_NODELIST} | sort -h | head -n1)
torchrun_args=(
    "--nnodes=${SLURM_JOB_NUM_NODES}"
    "--rdzv-endpoint=${RANK_ZERO_NODE}:29292"
    "--rdzv-id=${SLURM_JOB_ID:-99}"
    "--nproc-per-node=8"
    "--rdzv-backend=c10d"
)
export OMP_NUM_THREADS=8
srun torchrun "${torchrun_args[@]}" "$root/train.py"
