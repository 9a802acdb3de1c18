"""Grid Engine (Univa/Altair on ABCI 2.0, Son of Grid Engine elsewhere): everything
abcitrain knows about it.

``scheduler``: directives, options, qsub/qstat -xml/qacct/qdel and their answers, import and
plan problems; ``reservations``: qrsub/qrstat/qrdel. The template is templates/uge.sh.j2.
"""

from .scheduler import GridEngineBackend, iter_qacct, parse_qacct, wallclock_s

__all__ = ["GridEngineBackend", "iter_qacct", "parse_qacct", "wallclock_s"]
