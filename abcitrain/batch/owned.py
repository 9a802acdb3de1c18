"""Which job fields a directive sets, read the way each scheduler's submit command reads it.

abcitrain writes the walltime, nodes, resource, array, dependency, reservation, group,
output, name and working folder from the spec, and checks and prices the job from them. A
user's extra directive that sets one of them would slip past the limits, the price and the
budget guard, so it is refused, naming the spec key to use instead. Every spelling counts:
qsub's and sbatch's getopt accept ``-lwalltime=1:00:00`` and ``-t10`` as well as
``-l walltime=...`` and ``--time=10``; resource lists hold several names (``-l a=1,b=2``);
sbatch and argparse take unambiguous abbreviations of long options (``--ti=10``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: The spec key that owns each field, for the message.
SPEC_KEY = {
    "walltime": "walltime", "nodes": "nodes", "resource": "resource", "array": "array",
    "dependency": "depends_on / dependency", "reservation": "reservation", "group": "group",
    "output": "output", "name": "name", "workdir": "workdir",
}


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


_PBS_RESOURCES = {"walltime": "walltime", "select": "nodes", "nodes": "nodes",
                  "nodect": "nodes", "place": "nodes", "ncpus": "resource",
                  "ngpus": "resource"}
TABLES: Mapping[str, OptionTable] = {
    # qsub(1B) of PBS Professional: getopt, one-letter options
    "pbs": OptionTable(
        short={"-N": "name", "-J": "array", "-q": "resource", "-P": "group", "-A": "group",
               "-o": "output", "-e": "output", "-j": "output"},
        lists={"-l": _PBS_RESOURCES, "-W": {"depend": "dependency"}}),
    # qsub(1) of Grid Engine: whole-word options, values after a blank
    "uge": OptionTable(
        long={"-N": "name", "-t": "array", "-q": "resource", "-pe": "nodes",
              "-ar": "reservation", "-hold_jid": "dependency", "-hold_jid_ad": "dependency",
              "-A": "group", "-P": "group", "-g": "group", "-o": "output", "-e": "output",
              "-j": "output", "-wd": "workdir", "-cwd": "workdir"},
        lists={"-l": {"h_rt": "walltime", "s_rt": "walltime"}}),
    # sbatch(1): getopt_long
    "slurm": OptionTable(
        short={"-t": "walltime", "-N": "nodes", "-p": "resource", "-a": "array",
               "-d": "dependency", "-A": "group", "-o": "output", "-e": "output",
               "-J": "name", "-G": "resource", "-D": "workdir"},
        long={"--time": "walltime", "--nodes": "nodes", "--partition": "resource",
              "--array": "array", "--dependency": "dependency", "--reservation": "reservation",
              "--account": "group", "--output": "output", "--error": "output",
              "--job-name": "name", "--gpus": "resource", "--gres": "resource",
              "--gpus-per-node": "resource", "--chdir": "workdir"},
        abbreviations=True),
    # abcitrain.localsched's #LOCAL lines: argparse
    "local": OptionTable(
        long={"--name": "name", "--walltime": "walltime", "--array": "array",
              "--output": "output", "--dependency": "dependency", "--nodes": "nodes",
              "--gpus": "resource"},
        abbreviations=True),
}
_WORD = re.compile(r"--?[A-Za-z][A-Za-z0-9_-]*")


def owned_fields(directive: str, scheduler: str, resource_names: Iterable[str] = (),
                 nodes: int | None = None) -> list[tuple[str, str]]:
    """The (field, how it was spelled) pairs a directive sets among the fields abcitrain
    owns; [] when it sets none. ``resource_names`` are the profile's resource types, which
    Grid Engine sites such as ABCI request as ``-l rt_F=N``. A PBS ``select`` of exactly the
    spec's ``nodes`` chunks is the same request spelled in more detail (``:mpiprocs=8``): it
    is not counted, and may replace abcitrain's once that is dropped."""
    table = TABLES.get(scheduler)
    text = directive.strip()
    m = _WORD.match(text)
    if table is None or m is None:
        return []
    word, after = m.group(0), text[m.end():]
    candidates = [(word, after[1:].strip() if after[:1] in (" ", "=") else after.strip())]
    if not text.startswith("--") and len(text) > 2:
        # getopt reads "-lwalltime=1" as -l with "walltime=1" and "-t10" as -t 10; Grid
        # Engine's whole words are tried split too, so no attached spelling slips through
        rest = text[2:]
        candidates.append((text[:2], rest[1:].strip() if rest[:1] == " " else rest))
    lists = dict(table.lists)
    if scheduler == "uge":
        lists["-l"] = {**lists["-l"], **{name: "resource" for name in resource_names}}
    found: list[tuple[str, str]] = []
    for whole, (opt, value) in zip((True, False), candidates, strict=False):
        for item in re.split(r"[,+]", value) if opt in lists else ():
            name = item.split("=")[0].split(":")[0].strip()
            if (scheduler, opt, name) == ("pbs", "-l", "select") and nodes is not None \
                    and item.partition("=")[2].split(":")[0] == str(nodes):
                continue
            if name in lists[opt]:
                found.append((lists[opt][name], f"{opt} {name}"))
            elif scheduler == "pbs" and opt == "-l" and name.isdigit():
                found.append(("nodes", f"{opt} {item}"))        # old style: -l 2:ncpus=4
        if opt in table.short:
            found.append((table.short[opt], opt))
        if not whole:
            continue          # whole-word options (Grid Engine's -js, -jc) are not split
        if opt in table.long:
            found.append((table.long[opt], opt))
        elif table.abbreviations and opt.startswith("--") and len(opt) > 3:
            found += [(f, full) for full, f in table.long.items() if full.startswith(opt)]
    return list(dict.fromkeys(found))


#: Options that make a submit command print text and exit instead of submitting (PBS's and
#: Grid Engine's -h holds the job instead: it is theirs to keep).
NOT_SUBMITTING = {
    "pbs": {"--version", "--help"}, "uge": {"-help", "--help"},
    "slurm": {"--help", "-h", "--usage", "--version", "-V"},
    "local": {"--help", "-h"},
}


def owned_problem(directive: str, scheduler: str, resource_names: Iterable[str] = (),
                  nodes: int | None = None) -> str | None:
    """Why an extra directive is refused, or None when it sets no field abcitrain owns."""
    word = _WORD.match(directive.strip())
    if word is not None and word.group(0) in NOT_SUBMITTING.get(scheduler, ()):
        return (f"{directive!r} makes the submit command print its help or version and "
                "submit nothing")
    found = owned_fields(directive, scheduler, resource_names, nodes)
    if not found:
        return None
    what = "; ".join(f"{f} ({spelled})" for f, spelled in found)
    keys = ", ".join(dict.fromkeys(SPEC_KEY[f] for f, _ in found))
    return (f"{directive!r} sets {what}, which abcitrain writes from the spec and checks "
            f"against the limits, the price and the budget: set the spec's {keys} instead")
