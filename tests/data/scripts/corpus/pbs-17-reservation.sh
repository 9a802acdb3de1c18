#!/bin/bash
#PBS -q R1234
#PBS -v RTYPE=rt_HF,USE_SSH=1
#PBS -l select=1
#PBS -l walltime=10:00:00
#PBS -P gaa50000
#PBS -j oe

cd ${PBS_O_WORKDIR}
source ~/venv/bin/activate
python sft.py 2>&1 | tee logs/sft.log
