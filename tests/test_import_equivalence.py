"""Each script of the corpus and its imported-then-rendered twin do the same thing.

The corpus (tests/data/scripts/corpus/, written for these tests; SOURCES.md names, for each
construct, the public ABCI, TSUBAME or Slurm script that showed it) is imported with
``abcitrain import``, rendered with ``abcitrain``'s own planner, and both scripts run in the
same sandbox (tests/harness/jobsandbox.py): the scheduler's variables set the same way, the
programs a job launches replaced by stubs that record their argv, working folder and
environment. The two traces, outputs, exit statuses and left files must be equal.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import DATA, ROOT, cli

sys.path.insert(0, str(ROOT / "tests" / "harness"))
from jobsandbox import Sandbox, can_sandbox

from abcitrain.service.plans import load_plan

CORPUS = DATA / "scripts" / "corpus"
SCRIPTS = sorted(CORPUS.glob("*.sh"))
CLUSTER = {"pbs": "abci3", "uge": "abci2", "slurm": "slurm"}
#: What each scheduler calls a job without a name option: the script's file name.
NAME_OPTION = {"pbs": r"^#PBS\s+-N\s*(\S+)", "uge": r"^#\$\s*-N\s+(\S+)",
               "slurm": r"^#SBATCH\s+(?:--job-name=|-J\s*)(\S+)"}
#: Every construct the corpus must cover, and how to recognise it in a script.
CONSTRUCTS = {
    "backslash continuation": r"\\\n",
    "command substitution $(...)": r"\$\(",
    "arithmetic $((...))": r"\$\(\(",
    "suffix removal ${VAR%%...}": r"\$\{\w+%%",
    "substitution ${VAR/x/y}": r"\$\{\w+/",
    "default ${VAR:-x}": r"\$\{\w+:-",
    "if": r"^\s*if ",
    "for": r"^\s*for ",
    "case": r"^\s*case ",
    "function": r"^\s*\w+\(\) \{",
    "bash array": r"=\(",
    "heredoc": r"<<",
    "source of a venv": r"(source|\.) \S*/activate",
    "module load": r"module load",
    "module use": r"module use",
    "module purge": r"module purge",
    "mpirun with twenty -x": r"(-x \S+[\s\\]+){20}",
    "trap": r"^\s*trap ",
    "exec redirection": r"^\s*exec >",
    "set -euo pipefail in the user's code": r"set -eu",
    "qsub from inside a job": r"\$\(qsub ",
    "two #PBS -v lines": r"#PBS -v .*\n#PBS -v ",
    "chunk resources select=N:ncpus:ngpus": r"select=\d+:ncpus=\d+:ngpus=\d+",
    "MPI layout select=N:mpiprocs:ompthreads": r"select=\d+:mpiprocs=\d+:ompthreads=\d+",
    "place=scatter": r"place=scatter",
    "array with a % limit": r"(-J|--array=)\s*\d+-\d+%\d+",
    "Grid Engine -tc": r"-tc \d+",
    "dependency": r"(depend=afterok|--dependency=|-hold_jid)",
    "reservation queue": r"(#PBS -q R\d+|-ar \d+)",
    "-k oed with -o": r"-k oed",
    "-o/-e /dev/null": r"-e /dev/null",
    "digits-first job name": r"-N \d",
    "Grid Engine without -cwd": r"^#\$ -N light",
    "disabled directive #####SBATCH": r"^#####SBATCH",
}


def _scheduler(path: Path) -> str:
    return path.name.split("-")[0]


def _job_name(text: str, scheduler: str, default: str) -> str:
    m = re.search(NAME_OPTION[scheduler], text, re.M)
    return m[1] if m else default


def _starts_in_home(text: str, scheduler: str) -> bool:
    """PBS starts every job in $HOME; Grid Engine too unless -cwd; Slurm in the submit
    folder."""
    if scheduler == "pbs":
        return True
    return scheduler == "uge" and not re.search(r"^#\$\s*-cwd", text, re.M)


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_an_imported_script_does_what_the_original_did(path: Path, tmp_path: Path) -> None:
    why = can_sandbox()
    if why:
        pytest.skip(why)
    scheduler = _scheduler(path)
    spec_path = tmp_path / "spec.yaml"
    args = ["import", str(path), "-o", str(spec_path)]
    if scheduler == "uge":
        args += ["--group", "gaa50000"]          # ABCI 2.0 gives it on qsub's command line
    result = cli(*args)
    assert "faithful" in result.stderr, result.stderr
    spec = yaml.safe_load(spec_path.read_text())
    plan = load_plan(spec_path)
    assert plan.errors == [], plan.errors
    text = path.read_text()
    prefix = {"pbs": "#PBS", "uge": "#$", "slurm": "#SBATCH"}[scheduler]
    lines = text.splitlines(keepends=True)
    kept = [ln for i, ln in enumerate(lines)
            if not (i == 0 and ln.startswith("#!")) and not ln.startswith(prefix)]
    assert spec["script"] == "".join(kept)            # every other line, byte for byte
    array = "array" in spec
    layout = re.search(r"select=\d+:[^\s]*ompthreads=(\d+)", text)
    extra = {"OMP_NUM_THREADS": layout[1]} if layout else {}   # PBS's mom sets it
    box = Sandbox(tmp_path / "box")
    box.reset()
    original = box.run(text, box.scheduler_env(scheduler, _job_name(text, scheduler,
                                                                   path.name), array, extra),
                       _starts_in_home(text, scheduler))
    box.reset()
    twin = box.run(plan.script, box.scheduler_env(scheduler, plan.spec.name, array, extra),
                   scheduler == "pbs")        # abcitrain writes -cwd for Grid Engine
    assert original.trace.count("CALL ") >= 1, "the original launched nothing"
    assert twin.status == original.status, (twin.status, original.status)
    assert twin.stdout == original.stdout
    assert twin.trace == original.trace
    assert twin.files == original.files


def test_the_corpus_covers_every_construct_and_sources_name_a_public_script() -> None:
    texts = {p.name: p.read_text() for p in SCRIPTS}
    assert len(texts) >= 15
    missing = [c for c, rx in CONSTRUCTS.items()
               if not any(re.search(rx, t, re.M) for t in texts.values())]
    assert missing == [], f"no corpus script shows: {missing}"
    sources = (CORPUS / "SOURCES.md").read_text()
    unnamed = [c for c in CONSTRUCTS if f"| {c} |" not in sources]
    assert unnamed == [], f"SOURCES.md names no public script for: {unnamed}"
    rows = [ln for ln in sources.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert all(re.search(r"`[\w.-]+/[\w.-]+` `[^`]+`", ln) or "NOT LOCATED" in ln
               for ln in rows), "each row names the public repository and path, or says not"
    located = [ln for ln in rows if "NOT LOCATED" not in ln]
    assert len(located) >= 20


def test_public_scripts_directives_import(tmp_path: Path) -> None:
    """The directives of the public scripts SOURCES.md names (kept as facts in
    public-directives/) import without a refusal, each directive accounted for."""
    folder = CORPUS / "public-directives"
    files = sorted(folder.glob("*.txt"))
    assert len(files) >= 10
    for path in files:
        scheduler = path.name.split("__")[0]
        script = tmp_path / f"{path.stem}.sh"
        script.write_text("#!/bin/bash\n" + path.read_text() + "\necho body\n")
        args = ["import", str(script), "--from", CLUSTER[scheduler]]
        done = cli(*args, ok=None)
        assert done.exit_code in (0, 2), done.output
        assert "Traceback" not in done.output
        if "cannot be imported" in done.output:
            # every refusal names its line and why
            said = [ln for ln in done.output.splitlines() if ln.startswith("  - ")]
            assert said and all(re.match(r"  - line \d+: '", ln) for ln in said), done.output
        else:
            assert yaml.safe_load(done.stdout)["script"].strip() == "echo body", done.output


def test_two_v_lines_keep_pbs_behaviour_and_warn_with_both_lines() -> None:
    done = cli("import", str(CORPUS / "pbs-02-multinode-chunks.sh"))
    spec = yaml.safe_load(done.stdout)
    assert "-v NCCL_DEBUG=INFO" in spec["extra_directives"]
    assert "-v USE_SSH=1" not in spec["extra_directives"]       # PBS kept the last list only
    assert "lines 8, 9 each give -v" in done.stderr and "(line 9)" in done.stderr
    assert spec["name"] == "0134"                                # OpenPBS takes it
    assert spec["extra_directives"][:2] == ["-l select=2:ncpus=192:ngpus=8",
                                            "-l place=scatter"]
    assert spec["drop_directives"] == ["-l select"] and spec["nodes"] == 2
    assert "-k oed" in spec["extra_directives"] and "warning" not in done.stderr
