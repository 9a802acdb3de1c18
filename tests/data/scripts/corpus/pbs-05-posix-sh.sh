#!/bin/sh
#PBS -q rt_HF
#PBS -l select=4
#PBS -l walltime=140:00:00
#PBS -P gaa50000

cd $HOME/project

. jobs/environment.sh

mkdir -p job_logs/subset

python -m experiment \
    model=resnet50 \
    dataset=subset \
    train_batch_size=512 \
    > job_logs/subset/train.log 2>&1
echo "exit $?"
# relies on the shell's defaults: an unset variable reads empty, a failed step goes on
echo "extra: $EXTRA_ARGS"
found=$(ls no-such-dir 2>/dev/null | wc -l)
echo "found $found"
false
python -m experiment.report
