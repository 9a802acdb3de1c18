#!/bin/bash
#SBATCH -J sft
#SBATCH -N 1
#SBATCH -p gpu
#SBATCH -t 2:00:00
#SBATCH --dependency=afterok:77
#SBATCH --mail-type=END

module purge
module use $HOME/modulefiles
module load cuda/12.4

cat > run_config.yaml <<EOF
model: tiny
job: ${SLURM_JOB_ID}
output: out/${SLURM_JOB_NAME}
EOF
cat <<'RAW'
literal $SLURM_JOB_ID stays
RAW
python sft.py --config run_config.yaml
