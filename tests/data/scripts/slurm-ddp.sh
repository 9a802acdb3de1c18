#!/bin/bash
#SBATCH --job-name=ddp
#SBATCH --partition=gpu
#SBATCH --nodes=2
#SBATCH --time=02:00:00
#SBATCH --output=logs/%x-%j.out
#SBATCH --account=proj1
#SBATCH --mail-type=END
#SBATCH --comment="two words"
module purge
module load cuda
srun python ddp.py --epochs 3
