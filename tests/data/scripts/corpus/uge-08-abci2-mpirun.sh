#!/bin/sh
#$-l rt_F=2
#$-cwd
#$-l h_rt=0:10:00
#$ -j y

source /etc/profile.d/modules.sh

OUTPUT_PREFIX=${JOB_NAME}.${JOB_ID}

# processes per node (GPUs) and in all
NPPN=4
NMPIPROCS=$(($NHOSTS * $NPPN))

module load gcc/9.3.0
module load openmpi/4.0.5
mpirun -np $NMPIPROCS -npernode $NPPN -hostfile $SGE_JOB_HOSTLIST \
  -x PATH -x LD_LIBRARY_PATH python bench.py --out $OUTPUT_PREFIX.json
module purge
