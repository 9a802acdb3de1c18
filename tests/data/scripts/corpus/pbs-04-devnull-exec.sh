#!/bin/bash
#PBS -P gaa50000
#PBS -q rt_HF
#PBS -N convert_ckpt
#PBS -l select=1:ncpus=8:ngpus=8
#PBS -l walltime=3:00:00
#PBS -v RTYPE=rt_HF
#PBS -W depend=afterok:4321.pbs1
#PBS -o /dev/null
#PBS -e /dev/null
#PBS -m n

cd $PBS_O_WORKDIR

JOBID=${PBS_JOBID%%.*}
mkdir -p ./logs
LOGFILE=./logs/convert-${JOBID}.out
ERRFILE=./logs/convert-${JOBID}.err
exec > $LOGFILE 2> $ERRFILE

set -eu -o pipefail

source venv/bin/activate
python tools/convert.py --in ckpt/latest --out ckpt/hf \
  --dtype bfloat16
cat "$LOGFILE" >&2
