#!/bin/bash
# A job inside an ABCI 3.0 reservation: the reservation's queue, RTYPE mandatory.
#PBS -q R1234
#PBS -v RTYPE=rt_HF,USE_SSH=1
#PBS -l select=4
#PBS -l walltime=24:00:00
#PBS -P gaa50000
#PBS -N resv-sft
source /etc/profile.d/modules.sh
module load cuda/12.6
python sft.py 2>&1 | tee logs/sft.log
