#!/bin/bash
#SBATCH --array=1-10%2
#SBATCH --time=0-00:15:00
#SBATCH --nodes=1
#SBATCH --partition=cpu
#SBATCH --output=logs/%x-%A_%a.out
#SBATCH --account=team1

case "$SLURM_ARRAY_TASK_ID" in
  1|2) lr=1e-4 ;;
  3|4|5) lr=3e-4 ;;
  *) lr=1e-3 ;;
esac
echo "task $SLURM_ARRAY_TASK_ID lr=$lr"
python3 run_task.py "$SLURM_ARRAY_TASK_ID" --lr "$lr"
