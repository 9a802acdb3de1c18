"""Hostile strings in every field, through every template.

Each value either is refused with a clear error naming its field, or yields a script that
passes `bash -n`, holds exactly the intended directive lines, and, when run, gives the
program exactly the intended argv, environment and working directory.
"""

from __future__ import annotations

import json
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
    "--flag", "-", "*", "~", "$HOME", "${IFS}", "!event", "cr\rhere", "'\"'\"'",
    "\x1b[31mred", "sep\u2028arator", "#", "}{", "%j %x", "a=b,c=d", "",
]
PREFIXES = ("#PBS", "#$", "#SBATCH", "#LOCAL")
CLUSTERS = {"abci3": "rt_HF", "abci2": "rt_F", "slurm": "gpu", "local": "cpu"}
PROBE = ("import json, os, sys; print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(), "
         "'env': os.environ.get('HOSTILE_VAR')}))")


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
        "array": {"array": value}, "walltime": {"walltime": value},
    }


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
@pytest.mark.parametrize("field", sorted(_fields("x")))
def test_hostile_values(cluster: str, field: str, tmp_path: Path) -> None:
    refused = accepted = 0
    for value in HOSTILE:
        data = _base(cluster)
        change = _fields(value)[field]
        if field == "argv":
            change = {"command": [*data["command"], value, "plain"]}
        data.update(change)
        try:
            plan = plan_job(*parse_spec(data))
        except InputError as exc:
            assert exc.problems and all(p.where for p in exc.problems), exc
            refused += 1
            continue
        if plan.errors:
            refused += 1
            continue
        accepted += 1
        _assert_safe(plan.script, len(plan.directives), value)
        if field in ("argv", "env-value", "workdir"):
            _assert_runs_as_intended(plan.script, field, value, tmp_path)
    assert refused + accepted == len(HOSTILE)
    if field in ("argv", "env-value"):
        assert refused == 0          # the script body quotes anything (bar NUL) faithfully
    else:
        assert refused > 0           # directive-bound fields hold only allow-listed text


def _assert_safe(script: str, n_directives: int, value: str) -> None:
    check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert check.returncode == 0, (value, check.stderr)
    lines = script.split("\n")
    directive_lines = [ln for ln in lines if ln.startswith(PREFIXES)]
    assert len(directive_lines) == n_directives, (value, directive_lines)
    # directives are a block at the top: after the first command no line looks like one
    first_cmd = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("#"))
    assert not any(ln.lstrip().startswith(PREFIXES) for ln in lines[first_cmd:]), value


def _assert_runs_as_intended(script: str, field: str, value: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    if field == "workdir":
        target = run_dir / value if value not in ("", "~") else None
        if target is None or "/" in value or value in (".", ".."):
            return
        target.mkdir(exist_ok=True)
    path = tmp_path / "job.sh"
    path.write_text(script)
    proc = subprocess.run(["bash", str(path)], cwd=run_dir, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, (value, proc.stderr)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if field == "argv":
        assert got["argv"] == [value, "plain"]
    elif field == "env-value":
        assert got["env"] == value
    else:
        assert Path(got["cwd"]) == (run_dir / value).resolve()
    assert not list(run_dir.rglob("PWNED")) and not (tmp_path / "PWNED").exists()
