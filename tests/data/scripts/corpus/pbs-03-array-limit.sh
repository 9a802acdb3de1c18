#!/bin/sh
#PBS -q rt_HG
#PBS -l select=1
#PBS -l walltime=0:30:00
#PBS -J 1-10%2
#PBS -P gaa50000
#PBS -j oe

cd $PBS_O_WORKDIR
pick() {
  sed -n "${1}p" "$2"
}
CONFIG=$(pick "$PBS_ARRAY_INDEX" configs.txt)
if [ -z "$CONFIG" ]; then
  echo "no config for task $PBS_ARRAY_INDEX"
  CONFIG=default.yaml
else
  echo "task $PBS_ARRAY_INDEX: $CONFIG"
fi
python3 sweep.py --config "$CONFIG" --seed $((PBS_ARRAY_INDEX * 7))
