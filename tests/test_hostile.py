"""Hostile strings in every field, through every template and every profile.

Each value either is refused with a clear error naming its field, or yields a script that
passes `bash -n`, holds exactly the intended directive lines, and RUNS (sandboxed: its own
folder, a PATH whose `module` only records its arguments) without any injected command
taking effect: a marker file that every injection attempt would create never appears. The
fields that reach the program (argv, environment, workdir, modules) arrive exactly as written
(argv and environment values with the documented ${NAME} expansion, and nothing else);
a value that reaches a directive line or the submit command holds only allow-listed text and
never becomes an option of another program.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec
from abcitrain.errors import InputError

HOSTILE = [
    "with space", "it's", 'dq"uote', "$(touch PWNED)", "`touch PWNED`", "a; touch PWNED",
    "a && touch PWNED", "line1\nline2", "\n#PBS -q evil", "\n#SBATCH --wrap=evil",
    "\n#$ -l evil=1", "\n#LOCAL --walltime 1", "日本語のテキスト", "tab\there", "back\\slash",
    "--flag", "-", "-rf", "--help", "*", "~", "$HOME", "${IFS}", "!event", "cr\rhere",
    "'\"'\"'", "\x1b[31mred", "sep\u2028arator", "#", "}{", "%j %x", "a=b,c=d", "",
    "nul\x00here", "x\n touch PWNED", "a|touch PWNED", "a>PWNED", "$'\\x41'",
    # job-time variables: only ${NAME} of an identifier expands (README); the rest is text
    "${HOME}/cache", "$${HOME}", "${HOME:-$(touch PWNED)}", "${HOME}$(touch PWNED)",
    "${HOME}`touch PWNED`", "${1}", "${HOME", "${!HOME}", "${IFS}x",
]
#: What the sandbox's job sees for the shell variables those values name.
SANDBOX_VARS = {"IFS": " \t\n"}


def expected(value: str, home: str) -> str:
    """What a body field arrives as, by the documented rule written out here: each
    ${NAME} (NAME an identifier) becomes the job's value, "$${" a literal "${", nothing
    else changes."""
    names = {**SANDBOX_VARS, "HOME": home}
    return re.sub(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                  lambda m: "${" if m.group(1) is None else names[m.group(1)], value)
PREFIXES = ("#PBS", "#$", "#SBATCH", "#LOCAL")
CLUSTERS = {"abci3": "rt_HF", "abci2": "rt_F", "gridengine": "node", "slurm": "gpu",
            "local": "cpu"}
PROBE = ("import json, os, sys; print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(), "
         "'env': os.environ.get('HOSTILE_VAR')}))")
# What a directive-bound value may hold, written out here (not taken from abcitrain): no
# quote, space, shell metacharacter, control character or non-ASCII letter.
DIRECTIVE_SAFE = r"A-Za-z0-9_.+/:=,@%\-"
SAFE_WITH = {"extra_directives": " ", "drop_directives": " ", "output": "{}"}
# Fields that never reach a directive or the submit command: the body quotes them, or (train)
# they go to the run's own files, not the script.
QUOTED_ONLY = ("workdir", "modules", "env-key", "train.model", "train.data")
# Fields whose value reaches the job only through the script body, quoted: anything but NUL.
BODY_FIELDS = ("argv", "env-value", "setup-run", "sweep-value")


def _base(cluster: str) -> dict[str, Any]:
    return {"name": "hostile", "cluster": cluster, "resource": CLUSTERS[cluster],
            "walltime": 600, "group": "gaa50000", "command": [sys.executable, "-c", PROBE]}


def _fields(value: str) -> dict[str, dict[str, Any]]:
    return {
        "name": {"name": value}, "group": {"group": value}, "reservation": {"reservation": value},
        "modules": {"modules": [value]}, "env-key": {"env": {value: "x"}},
        "env-value": {"env": {"HOSTILE_VAR": value}}, "argv": {"command": None},
        "output": {"output": value}, "workdir": {"workdir": value},
        "extra_directives": {"extra_directives": [value]},
        "drop_directives": {"drop_directives": [value]}, "depends_on": {"depends_on": [value]},
        "array": {"array": value}, "walltime": {"walltime": value}, "nodes": {"nodes": value},
        "service": {"service": value}, "dependency": {"depends_on": ["12"], "dependency": value},
        "resource": {"resource": value}, "cluster": {"cluster": value},
        "train.model": {"train": {"model": value}}, "train.data": {"train": {"data": value}},
        "train.mode": {"train": {"mode": value}},
        "setup-run": {"setup": {"run": [["echo", value]]}},
        # a sweep's values reach the task as text, never expanded (data, not commands)
        "sweep-value": {"sweep": {"list": [{"HOSTILE_VAR": value}]}},
        "sweep-name": {"sweep": {"grid": {value: [1, 2]}}},
        "max_concurrent": {"array": "1-2", "max_concurrent": value},
        "container.image": {"container": {"image": value}},
        "container.binds": {"container": {"image": "img.sif", "binds": [value]}},
    }


def _train(**change: Any) -> dict[str, Any]:
    train = {"mode": "sft", "model": "jobs/models/tiny-llama", "init": "random",
             "data": "jobs/data/sft.jsonl", "seq_len": 32, "global_batch": 4, "steps": 1,
             "precision": "fp32", **change}
    return {"train": train}


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A folder to run scripts in, with a `module` that records its arguments (one per line,
    NUL-separated in a file) instead of loading anything."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    module = bin_dir / "module"
    module.write_text('#!/bin/bash\nprintf "%s\\0" "$@" >> "$MODULE_LOG"\n')
    module.chmod(0o755)
    # a stand-in container runtime: `RUNTIME exec [--nv] [--bind PATH]... IMAGE CMD...`
    # runs CMD (no real runtime can be installed here)
    for runtime in ("apptainer", "singularity"):
        stand_in = bin_dir / runtime
        stand_in.write_text('#!/bin/bash\nshift\nwhile [ "${1#--}" != "$1" ]; do\n'
                            '  if [ "$1" = --bind ]; then shift 2; else shift; fi\ndone\n'
                            'shift\nexec "$@"\n')
        stand_in.chmod(0o755)
    (tmp_path / "run").mkdir()
    return tmp_path


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
@pytest.mark.parametrize("field", sorted(_fields("x")))
def test_hostile_values(cluster: str, field: str, sandbox: Path, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    if field.startswith("train."):
        (tmp_path / "jobs").symlink_to(Path(__file__).resolve().parent.parent / "jobs")
    refused, accepted = [], []
    for value in HOSTILE:
        data = _base(cluster)
        change = _fields(value)[field]
        if field == "argv":
            change = {"command": [*data["command"], value, "plain"]}
        elif field.startswith("train."):
            data.pop("command")          # a training job has a train: section instead
            change = _train(**change["train"])
        data.update(change)
        try:
            plan = _plan(data)
        except InputError as exc:
            assert exc.problems and all(p.where for p in exc.problems), exc
            assert len(str(exc)) < 4000, "the refusal quotes the value at length"
            refused.append(value)
            continue
        if plan.errors:
            refused.append(value)
            continue
        accepted.append(value)
        _assert_safe(plan.script, len(plan.directives), value)
        _assert_submit_argv_safe(plan, cluster)
        _assert_runs_as_intended(plan.script, field, value, sandbox)
    assert sorted(refused + accepted) == sorted(HOSTILE)
    assert "nul\x00here" in refused, "a NUL byte cannot be carried by a script: refuse it"
    if field in BODY_FIELDS:
        # the script body quotes anything but NUL faithfully
        assert refused == ["nul\x00here"], refused
    elif field not in QUOTED_ONLY:
        allowed = re.compile(f"[{DIRECTIVE_SAFE}{re.escape(SAFE_WITH.get(field, ''))}]*")
        unsafe = [v for v in accepted if not allowed.fullmatch(v)]
        assert unsafe == [], f"{field} accepted text outside the allow-list: {unsafe!r}"


def _plan(data: dict[str, Any]) -> Any:
    spec, profile = parse_spec(data)
    if spec.train is not None:
        from abcitrain.train.prepare import prepare

        spec, _ = prepare(spec, profile, False, None)
    return plan_job(spec, profile)


def _assert_safe(script: str, n_directives: int, value: str) -> None:
    assert "\x00" not in script
    check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert check.returncode == 0, (value, check.stderr)
    lines = script.split("\n")
    directive_lines = [ln for ln in lines if ln.startswith(PREFIXES)]
    assert len(directive_lines) == n_directives, (value, directive_lines)
    # directives are a block at the top: after the first command no line looks like one
    first_cmd = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("#"))
    assert not any(ln.lstrip().startswith(PREFIXES) for ln in lines[first_cmd:]), value


def _assert_submit_argv_safe(plan: Any, cluster: str) -> None:
    """The submit command is an argv (no shell): a value is one whole element, and none but
    abcitrain's own options starts with '-' (so no value becomes another option)."""
    argv = plan.submit_argv("JOB.sh")
    assert argv[-1] == "JOB.sh"
    if cluster == "abci2":         # ABCI 2.0 puts the group on the command line: -g GROUP
        group = argv[argv.index("-g") + 1]
        assert group == plan.spec.group and not group.startswith("-"), argv


def _assert_runs_as_intended(script: str, field: str, value: str, sandbox: Path) -> None:
    run_dir = sandbox / "run"
    shutil.rmtree(run_dir)
    run_dir.mkdir()
    if field == "workdir":
        if value in ("", "~") or "/" in value or value in (".", ".."):
            return        # absolute or up-and-out folders are not created here
        (run_dir / value).mkdir()
    log = sandbox / "module.log"
    log.unlink(missing_ok=True)
    path = sandbox / "job.sh"
    path.write_text(script)
    env = {"PATH": f"{sandbox / 'bin'}:/usr/bin:/bin", "HOME": str(sandbox),
           "MODULE_LOG": str(log), "ABCITRAIN_SUBMIT_DIR": str(run_dir)}
    if field.startswith("sweep"):
        # run as the sweep's first task, under each scheduler's own variable
        env.update(SLURM_ARRAY_TASK_ID="1", SGE_TASK_ID="1", PBS_ARRAY_INDEX="1",
                   LOCAL_ARRAY_INDEX="1")
    if field.startswith("train."):
        # the last line would start training: run everything before it
        path.write_text(script.rstrip("\n").rsplit("\n", 1)[0] + "\n")
    proc = subprocess.run(["bash", str(path)], cwd=run_dir, capture_output=True, text=True,
                          env=env, timeout=60)
    assert not list(sandbox.rglob("PWNED")), (field, value)       # no injection took effect
    assert proc.returncode == 0, (field, value, proc.stderr[-2000:])
    if field.startswith("train."):
        return
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if field == "argv":
        assert got["argv"] == [expected(value, str(sandbox)), "plain"]
    elif field == "env-value":
        assert got["env"] == expected(value, str(sandbox))
    elif field == "sweep-value":
        assert got["env"] == value
    elif field == "workdir":
        assert Path(got["cwd"]) == (run_dir / value).resolve()
    elif field == "modules":
        assert log.read_bytes().split(b"\0")[:-1] == [b"load", value.encode()]
