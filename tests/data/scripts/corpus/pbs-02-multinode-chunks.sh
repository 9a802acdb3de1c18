#!/bin/bash
#PBS -q rt_HF
#PBS -l select=2:ncpus=192:ngpus=8
#PBS -l place=scatter
#PBS -l walltime=02:00:00
#PBS -P gaa50000
#PBS -N 0134
#PBS -v USE_SSH=1
#PBS -v NCCL_DEBUG=INFO
#PBS -k oed
#PBS -o logs/
#
# Two whole nodes; a hostfile written with a heredoc; the job id's sequence number.

cd "$PBS_O_WORKDIR"
JOB=${PBS_JOBID%%.*}
RUN_NAME=${PBS_JOBNAME/_/-}
NODES=($(sort -u "$PBS_NODEFILE"))
MASTER=${NODES[0]}
: > hostfile
for node in "${NODES[@]}"; do
  echo "$node slots=8" >> hostfile
done
cat > ds_env <<EOF
MASTER_ADDR=$MASTER
RUN=$RUN_NAME-$JOB
EOF
deepspeed --hostfile hostfile --master_addr "$MASTER" \
  train.py --run "$RUN_NAME-$JOB" --nodes ${#NODES[@]}
