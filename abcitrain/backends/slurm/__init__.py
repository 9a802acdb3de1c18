"""Slurm: everything abcitrain knows about it.

``scheduler``: directives, options, sbatch/squeue/sacct/scancel and their answers, import;
``reservations``: scontrol's reservations. The template is templates/slurm.sh.j2.
"""

from .scheduler import SlurmBackend, slurm_time

__all__ = ["SlurmBackend", "slurm_time"]
