#!/bin/bash
# An array sweep on ABCI 2.0 in a Singularity container, caches on the local SSD.
#$ -l rt_F=1
#$ -l h_rt=1:00:00:00
#$ -t 1-10
#$ -j y
#$ -cwd
#$ -N sweep
#$ -o logs/$JOB_NAME.o$JOB_ID.$TASK_ID
#$ -l USE_SSH=1
source /etc/profile.d/modules.sh
module load singularitypro
export SINGULARITY_TMPDIR=$SGE_LOCALDIR
export TMP=${SGE_LOCALDIR}
singularity exec --nv img.sif python sweep.py --index $SGE_TASK_ID
