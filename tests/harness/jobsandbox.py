"""A sandbox that runs a job script as its scheduler would start it, with every program the
job would launch replaced by a stub that records what it was asked to do.

Used by tests/test_import_equivalence.py to run an original script and its imported-then-
rendered twin the same way and compare what each did: the stubs' argv, working folder and
environment (abcitrain's own ABCITRAIN_* names left out), the job's standard output and exit
status, and the files it left in its home and submit folders.

The stubs: ``module`` (also as the shell function /etc/profile.d/modules.sh defines, in a
private mount namespace so the machine's own file is untouched), the launchers (mpirun,
mpiexec, torchrun, deepspeed, srun), Python and its tools (python, python3, uv, pip, conda,
pyenv), schedulers' commands (qsub, sbatch, scontrol), containers (singularity, apptainer),
``nvidia-smi`` and ``date`` (fixed answers, so two runs can be compared).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

STUBS = ("module", "mpirun", "mpiexec", "torchrun", "deepspeed", "srun", "python",
         "python3", "uv", "pip", "conda", "pyenv", "qsub", "sbatch", "scontrol",
         "singularity", "apptainer", "nvidia-smi", "date")
#: Variables that differ between any two runs, or that only abcitrain's prologue sets.
IGNORED = ("ABCITRAIN_", "PWD=", "OLDPWD=", "SHLVL=", "_=", "TRACE_FILE=")
HOSTS = ("node1", "node2")

_STUB = r"""#!/bin/bash
# date is a utility both scripts may call (abcitrain's prologue notes the start time): a
# fixed answer, never traced
[ "${0##*/}" = date ] && { echo "Thu Jan  1 00:00:00 UTC 2026"; exit 0; }
# so is Slurm's host list query (the Slurm template asks it for the node file)
[ "${0##*/} $1 $2" = "scontrol show hostnames" ] && { printf '%s\n' node1 node2; exit 0; }
{
  printf 'CALL %s\n' "${0##*/}"
  printf 'CWD %s\n' "$PWD"
  for a in "$@"; do printf 'ARG %q\n' "$a"; done
  env | LC_ALL=C sort | grep -v -E '^(ABCITRAIN_|PWD=|OLDPWD=|SHLVL=|_=|TRACE_FILE=)' \
    | sed 's/^/ENV /'
} >> "$TRACE_FILE"
case "${0##*/}" in
  nvidia-smi) for i in 0 1 2 3; do echo "GPU $i: stub (UUID: GPU-$i)"; done ;;
  qsub) echo 9999.pbs1 ;;
  sbatch) echo "Submitted batch job 9999" ;;
  *) : ;;
esac
exit 0
"""


@dataclass(frozen=True)
class Outcome:
    """What one run did."""

    trace: str
    stdout: str
    status: int
    files: dict[str, str]


class Sandbox:
    """Folders, stubs and scheduler variables for running job scripts under a test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.home, self.submit = root / "home", root / "submit"
        self.spool, self.tmp, self.localdir = root / "spool", root / "tmp", root / "local"
        self.trace = root / "trace.txt"
        self.modules_sh = root / "modules.sh"

    def reset(self) -> None:
        """A fresh sandbox at the same paths (two runs must see the same paths)."""
        if self.root.exists():
            shutil.rmtree(self.root)
        for folder in (self.bin, self.home, self.submit, self.spool, self.tmp,
                       self.localdir):
            folder.mkdir(parents=True)
        for name in STUBS:
            stub = self.bin / name
            stub.write_text(_STUB)
            stub.chmod(0o755)
        self.modules_sh.write_text(f'module() {{ "{self.bin}/module" "$@"; }}\n')
        (self.submit / "configs.txt").write_text("a.yaml\nb.yaml\nc.yaml\n")
        (self.submit / "jobs").mkdir()
        (self.submit / "jobs" / "environment.sh").write_text("export FROM_ENV_SH=1\n")
        (self.home / "project" / "jobs").mkdir(parents=True)
        (self.home / "project" / "jobs" / "environment.sh").write_text("export ENV_SH=1\n")
        (self.home / "work").mkdir()
        for venv in (self.submit / "venv", self.home / "venv"):
            (venv / "bin").mkdir(parents=True)
            (venv / "bin" / "activate").write_text(f'export VIRTUAL_ENV="{venv}"\n')
        (self.root / "nodefile").write_text("".join(f"{h}\n" * 8 for h in HOSTS))
        self.trace.write_text("")

    def scheduler_env(self, scheduler: str, name: str, array: bool,
                      extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment ``scheduler`` gives a job named ``name`` (task 3 of an array)."""
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.home), "USER": "tester",
               "LOGNAME": "tester", "LANG": "C", "TMPDIR": str(self.tmp),
               "TRACE_FILE": str(self.trace)}
        nodefile = str(self.root / "nodefile")
        if scheduler == "pbs":
            env |= {"PBS_JOBID": "4242[3].pbs1" if array else "4242.pbs1",
                    "PBS_JOBNAME": name, "PBS_O_WORKDIR": str(self.submit),
                    "PBS_NODEFILE": nodefile, "PBS_LOCALDIR": str(self.localdir),
                    "PBS_O_HOME": str(self.home), "PBS_ENVIRONMENT": "PBS_BATCH"}
            if array:
                env["PBS_ARRAY_INDEX"] = "3"
        elif scheduler == "uge":
            env |= {"JOB_ID": "4242", "JOB_NAME": name, "SGE_TASK_ID": "3" if array
                    else "undefined", "SGE_O_WORKDIR": str(self.submit),
                    "SGE_JOB_HOSTLIST": nodefile, "NHOSTS": str(len(HOSTS)),
                    "SGE_LOCALDIR": str(self.localdir)}
        elif scheduler == "slurm":
            env |= {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": name,
                    "SLURM_SUBMIT_DIR": str(self.submit), "SLURM_JOB_NODELIST": "node[1-2]",
                    "SLURM_JOB_NUM_NODES": "2", "SLURM_NNODES": "2"}
            if array:
                env |= {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_JOB_ID": "4242"}
        else:
            raise ValueError(scheduler)
        return env | (extra or {})

    def run(self, script_text: str, env: dict[str, str], start_in_home: bool) -> Outcome:
        """Run ``script_text`` with bash as the scheduler would: from its spool copy, in the
        home or submit folder, /etc/profile.d/modules.sh the stub (mount namespace)."""
        script = self.spool / "job.sh"
        script.write_text(script_text)
        start = self.home if start_in_home else self.submit
        inner = ('mount -t tmpfs none /etc/profile.d && cp "$1" /etc/profile.d/modules.sh && '
                 'cd "$2" && exec bash "$3"')
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "bash", "-c", inner, "_",
             str(self.modules_sh), str(start), str(script)],
            env=env, capture_output=True, text=True, timeout=60, check=False)
        return Outcome(self.trace.read_text(), done.stdout, done.returncode, self._files())

    def _files(self) -> dict[str, str]:
        found = {}
        for base in (self.home, self.submit):
            for path in sorted(base.rglob("*")):
                if path.is_file():
                    found[str(path.relative_to(self.root))] = path.read_text(errors="replace")
        return found


def can_sandbox() -> str | None:
    """Why the sandbox cannot run here (it needs a private mount namespace: root), or None."""
    if os.geteuid() != 0:
        return "the job sandbox mounts over /etc/profile.d in a private namespace: needs root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    return None
