"""abcitrain's own one-machine scheduler: the ``local`` cluster's backend drives it.

It reads ``#LOCAL`` directive lines from a job script, queues the job in a spool folder, and
starts one detached runner process per job. The runner waits for dependencies, runs each array
task with the environment a scheduler gives (job id, node file, array index, output file),
enforces the walltime and records the outcome, so status works after the submitter has gone.
A separate program (``python -m abcitrain.localsched``, its ``commands``).

May import: ``util``.
"""
