#!/bin/bash
# One ABCI 3.0 node, 8 ranks started by Open MPI (written for abcitrain's import tests).
#PBS -q rt_HF
#PBS -l select=1:mpiprocs=8
#PBS -l walltime=1:00:00
#PBS -P gaa50000
#PBS -j oe

cd ${PBS_O_WORKDIR}

source /etc/profile.d/modules.sh
module load hpcx
module load python/3.12/3.12.9

wd=runs/ddp
num_gpus=$(nvidia-smi -L | wc -l)

mpirun -np $num_gpus -bind-to none -map-by slot \
        -x MAIN_ADDR=$(hostname)  \
        -x MAIN_PORT=3000 \
        python -m trainer.apps.train $wd/config.yaml --working_directory $wd
