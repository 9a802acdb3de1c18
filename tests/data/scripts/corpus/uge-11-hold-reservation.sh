#!/bin/bash
#$ -l rt_AF=1
#$ -l h_rt=4:00:00
#$ -cwd
#$ -j y
#$ -hold_jid 1234
#$ -ar 5678
#$ -m ea
#$ -o logs/$JOB_NAME.o$JOB_ID

source ~/venv/bin/activate
export SINGULARITY_TMPDIR=$SGE_LOCALDIR
singularity exec --nv -B $SGE_LOCALDIR:/scratch image.sif \
  python eval.py --scratch /scratch
