#!/bin/bash
#$ -l rt_F=2
#$ -l USE_SSH=1
#$ -v SSH_PORT=2299
#$ -l h_rt=0:30:00
#$ -N light_dist_test
#$ -j y

START_TIMESTAMP=$(date '+%s')
job_id_base=$JOB_ID

source /etc/profile.d/modules.sh
module load cuda/11.1/11.1.1
module load nccl/2.7/2.7.8-1

export PYENV_ROOT="$HOME/.pyenv"
export PATH="$PYENV_ROOT/bin:$PATH"
eval "$(pyenv init -)"

cd work
python dist_test.py --job $job_id_base --start $START_TIMESTAMP
