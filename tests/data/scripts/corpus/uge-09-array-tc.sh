#$ -S /bin/bash
#$ -t 1-3:1
#$ -cwd
#$ -o .
#$ -e .
#$ -l rt_G.small=1
#$ -l h_rt=1:00:00
#$ -tc 3

seq_ids=(alpha beta gamma)
seq_id=${seq_ids[$SGE_TASK_ID-1]}

echo SGE_TASK_ID: $SGE_TASK_ID
mkdir -p results
python3 align.py ${seq_id} > results/${seq_id}.txt
