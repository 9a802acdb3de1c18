#!/bin/bash
#PBS -q rt_HF
#PBS -l select=1
#PBS -l walltime=24:00:00
#PBS -N long_run
#PBS -j oe
#PBS -V
#PBS -r y
#PBS -P gaa50000

cd $PBS_O_WORKDIR
# queue the continuation first: it waits for this job, whatever its end
NEXT=$(qsub -W depend=afterany:$PBS_JOBID long_run.sh)
echo "next: $NEXT"
python train.py --resume latest || echo "training stopped: $?"
