"""``abcitrain launch``, inside a job: the node list from the scheduler (``nodes``), the
command that starts the ranks on every node (``commands``) and the run that starts them,
watches the walltime and continues the job (``run``).

May import: ``domain``, ``errors``, ``util``, ``profiles``, ``backends`` (each scheduler's
node-file variables).
"""
