"""PBS Professional (ABCI 3.0): everything abcitrain knows about it.

``scheduler``: directives, options, qsub/qstat/qdel/qrls/qrerun and their answers, import
and plan problems; ``reservations``: pbs_rsub/pbs_rstat/pbs_rdel (ABCI's qrsub/qrstat/qrdel).
The template is templates/pbs.sh.j2.
"""

from .scheduler import PbsBackend, output_directive
from .status import parse_qstat_json

__all__ = ["PbsBackend", "output_directive", "parse_qstat_json"]
