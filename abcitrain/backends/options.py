"""The options of a submit command that set a field abcitrain owns, as a backend declares
them (``Backend.options``); ``Backend.owned_fields`` reads a directive with them.

abcitrain writes the walltime, nodes, resource, array, dependency, reservation, group,
output, name and working folder from the spec, and checks and prices the job from them. Every
spelling counts: qsub's and sbatch's getopt accept ``-lwalltime=1:00:00`` and ``-t10`` as
well as ``-l walltime=...`` and ``--time=10``; resource lists hold several names (``-l
a=1,b=2``); sbatch and argparse take unambiguous abbreviations of long options (``--ti=10``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

#: The fields abcitrain owns (the values of an ``OptionTable``).
FIELDS = ("walltime", "nodes", "resource", "array", "dependency", "reservation", "group",
          "output", "name", "workdir")
#: An option word at the start of a directive.
OPTION_WORD = re.compile(r"--?[A-Za-z][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class OptionTable:
    """One submit command's options that set a field abcitrain owns."""

    #: one-letter options, getopt style: the value may follow at once (``-t10``)
    short: Mapping[str, str] = field(default_factory=dict)
    #: options spelled in full (``--time``, Grid Engine's ``-hold_jid``)
    long: Mapping[str, str] = field(default_factory=dict)
    #: options whose value is a list of NAME[=VALUE] items, and the names they own
    lists: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: True when unambiguous prefixes of long options are accepted (getopt_long, argparse)
    abbreviations: bool = False
