#!/bin/bash
#PBS -q rt_HF
#PBS -l select=2:mpiprocs=8:ompthreads=12
#PBS -l walltime=12:00:00
#PBS -P gaa50000
#PBS -N pretrain-7b
#PBS -j oe

cd ${PBS_O_WORKDIR}
source /etc/profile.d/modules.sh
module load cuda/12.6/12.6.1 hpcx
export MASTER_ADDR=$(head -n 1 $PBS_NODEFILE)
export MASTER_PORT=$((10000 + ${PBS_JOBID%%.*} % 50000))
NP=$(wc -l < $PBS_NODEFILE)
mpirun -np $NP --hostfile $PBS_NODEFILE \
  -x MASTER_ADDR -x MASTER_PORT -x PATH -x LD_LIBRARY_PATH \
  -x CUDA_DEVICE_MAX_CONNECTIONS=1 -x NCCL_IB_GID_INDEX=3 -x NCCL_IB_TC=106 \
  -x NCCL_IB_SL=3 -x NCCL_NET_GDR_LEVEL=5 -x NCCL_IB_QPS_PER_CONNECTION=4 \
  -x NCCL_SOCKET_IFNAME=bond0 -x UCX_TLS=rc,sm,self -x UCX_NET_DEVICES=mlx5_0:1 \
  -x HF_HOME=$PBS_LOCALDIR/hf -x TORCH_NCCL_ASYNC_ERROR_HANDLING=1 \
  -x OMP_NUM_THREADS -x PYTHONUNBUFFERED=1 -x WANDB_MODE=offline \
  -x TOKENIZERS_PARALLELISM=false -x CUDA_LAUNCH_BLOCKING=0 \
  python pretrain.py --config configs/7b.yaml
