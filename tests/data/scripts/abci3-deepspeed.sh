#!/bin/bash
# Multi-node DeepSpeed pre-training on ABCI 3.0 with Open MPI (written for abcitrain's tests).
#PBS -q rt_HF
#PBS -l select=2:mpiprocs=8:ompthreads=12
#PBS -l walltime=12:00:00
#PBS -P gaa50000
#PBS -N 0150_pretrain
#PBS -j oe
#PBS -v USE_SSH=1
#PBS -m abe

cd ${PBS_O_WORKDIR}
source /etc/profile.d/modules.sh
module load cuda/12.6 hpcx/2.20
source .venv/bin/activate
export HF_HOME=$PBS_LOCALDIR/hf
export NCCL_IB_DISABLE=0
ulimit -l unlimited
mkdir -p logs
mpirun -np 16 --hostfile $PBS_NODEFILE --map-by ppr:8:node python train.py --config cfg.yaml
