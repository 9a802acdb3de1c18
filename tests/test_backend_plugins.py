"""A fifth scheduler from a third party: registered through the ``abcitrain.schedulers`` entry
points of a throw-away distribution, and driven through check, render, submit (dry run and
real), status and logs without any change to abcitrain's own code.

The toy scheduler is written here: a distribution folder (``toysched-0.1.dist-info`` with its
``entry_points.txt``) and its package, put on ``PYTHONPATH`` of a real ``abcitrain`` process,
exactly as ``pip install`` would leave a plug-in. Its submit command runs the script at once
and records the outcome in a spool folder; its status command prints one line per job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

TOY_BACKEND = '''
"""A toy scheduler: `python -m toysched.cmd submit|stat|cancel`."""
import sys
from pathlib import Path

from abcitrain.backends.base import Backend, JobVariables, Output
from abcitrain.backends.options import OptionTable
from abcitrain.domain import JobState, JobStatus

STATES = {"done": JobState.COMPLETED, "failed": JobState.FAILED,
          "cancelled": JobState.CANCELLED}


class ToyBackend(Backend):
    name = "toy"
    directive_prefix = "#TOY"
    template = "toy.sh.j2"
    template_dirs = (str(Path(__file__).parent / "templates"),)
    variables = JobVariables(job_id="TOY_JOB_ID", array_index="TOY_TASK",
                             submit_dir="TOY_SUBMIT_DIR", detect=("TOY_JOB_ID",))
    options = OptionTable(long={"--name": "name", "--time": "walltime"})
    help_options = frozenset({"--help"})
    status_covers_finished = True
    explanations = ((r"toy refuses", "the toy scheduler refused the job"),)

    def header_directives(self, spec, profile):
        return [f"--name {spec.name}", f"--time {spec.walltime_s}"]

    def walltime_text(self, seconds):
        return str(seconds)

    def submit_argv(self, script, extra_args):
        return [sys.executable, "-m", "toysched.cmd", "submit", *extra_args, script]

    def parse_submit(self, out):
        return out.stdout.strip()

    def status_argv(self, job_ids):
        return [sys.executable, "-m", "toysched.cmd", "stat", *job_ids]

    def parse_status(self, out, job_ids, cancelled=frozenset()):
        found = {}
        for line in out.stdout.splitlines():
            job_id, state, code, elapsed = line.split()
            found[job_id] = JobStatus(job_id, STATES[state], state, exit_code=int(code),
                                      elapsed_s=int(elapsed), task_elapsed=(float(elapsed),),
                                      final_usage=True)
        return found

    def accounting_argvs(self, job_ids):
        return []

    def parse_accounting(self, outs, job_ids, cancelled=frozenset()):
        return {}

    def cancel_argv(self, job_ids):
        return [sys.executable, "-m", "toysched.cmd", "cancel", *job_ids]
'''

TOY_COMMANDS = '''
import json, os, subprocess, sys, time
from pathlib import Path

spool = Path(os.environ["TOY_SPOOL"])
spool.mkdir(parents=True, exist_ok=True)
cmd, *args = sys.argv[1:]
if cmd == "submit":
    script = Path(args[-1])
    if "--refuse" in args:
        sys.exit("toy refuses: asked to")
    job_id = str(len(list(spool.glob("*.json"))) + 1)
    name = script.stem
    for line in script.read_text().splitlines():
        if line.startswith("#TOY --name "):
            name = line.split()[-1]
    env = dict(os.environ, TOY_JOB_ID=job_id, TOY_SUBMIT_DIR=os.getcwd())
    start = time.time()
    with open(f"{name}.o{job_id}", "w") as out:
        code = subprocess.run(["bash", str(script)], stdout=out, stderr=subprocess.STDOUT,
                              env=env, check=False).returncode
    (spool / f"{job_id}.json").write_text(json.dumps(
        {"state": "done" if code == 0 else "failed", "code": code,
         "elapsed": int(time.time() - start)}))
    print(job_id)
elif cmd == "stat":
    for job_id in args:
        path = spool / f"{job_id}.json"
        if path.exists():
            row = json.loads(path.read_text())
            print(job_id, row["state"], row["code"], row["elapsed"])
elif cmd == "cancel":
    pass
'''

TOY_TEMPLATE = '''{% extends "job.sh.j2" %}
{% block scheduler_env %}
export ABCITRAIN_JOB_ID="${TOY_JOB_ID:-}"
export ABCITRAIN_JOB_NAME=""
export ABCITRAIN_ARRAY_INDEX=""
export ABCITRAIN_SUBMIT_DIR="${TOY_SUBMIT_DIR:-$PWD}"
export ABCITRAIN_LOCALDIR="${TMPDIR:-/tmp}"
abcitrain_hosts() { :; }
{% endblock %}
'''

TOY_PROFILE = """\
extends: local
description: a third party's toy scheduler
scheduler: toy
"""


def _install_toy(site: Path) -> None:
    """What `pip install toysched` would leave: the package and its dist-info."""
    package = site / "toysched"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(TOY_BACKEND))
    (package / "cmd.py").write_text(textwrap.dedent(TOY_COMMANDS))
    (package / "templates" / "toy.sh.j2").write_text(TOY_TEMPLATE)
    dist = site / "toysched-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toysched\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[abcitrain.schedulers]\ntoy = toysched:ToyBackend\n")
    (dist / "RECORD").write_text("")


@pytest.fixture
def toy(tmp_path: Path) -> dict[str, str]:
    """An environment in which the toy distribution is installed, and a project using it."""
    site = tmp_path / "site"
    _install_toy(site)
    (tmp_path / ".abcitrain" / "clusters").mkdir(parents=True)
    (tmp_path / ".abcitrain" / "clusters" / "toy.yaml").write_text(TOY_PROFILE)
    (tmp_path / "job.yaml").write_text(
        "name: hello\ncluster: toy\nresource: cpu\nwalltime: '0:05:00'\n"
        "command: [bash, -c, 'echo hello from $ABCITRAIN_JOB_ID; exit 3']\n")
    env = dict(os.environ, TOY_SPOOL=str(tmp_path / "spool"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    return env


def _abcitrain(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "abcitrain", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_third_party_scheduler_is_found_and_driven_end_to_end(
        toy: dict[str, str], tmp_path: Path) -> None:
    checked = _abcitrain(toy, tmp_path, "check", "job.yaml")
    assert checked.returncode == 0, checked.stderr
    rendered = _abcitrain(toy, tmp_path, "render", "job.yaml")
    assert rendered.returncode == 0, rendered.stderr
    assert "#TOY --name hello\n#TOY --time 300\n" in rendered.stdout
    assert 'export ABCITRAIN_JOB_ID="${TOY_JOB_ID:-}"' in rendered.stdout
    assert "toysched.cmd submit" in rendered.stderr            # the exact submit command
    dry = _abcitrain(toy, tmp_path, "submit", "--dry-run", "job.yaml")
    assert dry.returncode == 0, dry.stderr
    assert not (tmp_path / "spool").exists()                  # a dry run submits nothing
    # an extra directive that sets what the spec owns is refused by the toy's own table
    (tmp_path / "bad.yaml").write_text((tmp_path / "job.yaml").read_text()
                                       + "extra_directives: ['--time 99999']\n")
    bad = _abcitrain(toy, tmp_path, "check", "bad.yaml")
    assert bad.returncode == 2 and "sets walltime (--time)" in bad.stderr + bad.stdout
    submitted = _abcitrain(toy, tmp_path, "submit", "--json", "job.yaml")
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job_id"]
    status = _abcitrain(toy, tmp_path, "status", "--json", job_id)
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)
    assert (row["state"], row["exit_code"], row["cluster"]) == ("FAILED", 3, "toy")
    logs = _abcitrain(toy, tmp_path, "logs", job_id)
    assert f"hello from {job_id}" in logs.stdout


def test_a_refusal_of_the_third_party_scheduler_reads_in_its_words_and_plain_ones(
        toy: dict[str, str], tmp_path: Path) -> None:
    # the profile asks for a submit argument the toy scheduler refuses
    profile = tmp_path / ".abcitrain" / "clusters" / "toy.yaml"
    profile.write_text(TOY_PROFILE + "group: {submit_args: ['--refuse']}\n")
    refused = _abcitrain(toy, tmp_path, "submit", "job.yaml", "--set", "group=g1")
    assert refused.returncode == 1
    assert "toy refuses: asked to" in refused.stderr                  # the scheduler's words
    assert "the toy scheduler refused the job" in refused.stderr      # and the plain ones
    assert "Traceback" not in refused.stderr


def test_the_registry_reads_what_importlib_metadata_reads(toy: dict[str, str]) -> None:
    """abcitrain reads entry_points.txt itself (importlib.metadata costs ~40 ms of a cold
    start); both must find the same schedulers."""
    probe = ("import json, importlib.metadata as m\n"
             "from abcitrain.backends import registered\n"
             "theirs = {e.name: e.value for e in m.entry_points(group='abcitrain.schedulers')}\n"
             "print(json.dumps([registered(), theirs]))\n")
    out = subprocess.run([sys.executable, "-c", probe], env=toy, capture_output=True,
                         text=True, timeout=60, check=True, cwd=ROOT)
    ours, theirs = json.loads(out.stdout)
    assert ours == theirs
    assert {"pbs", "uge", "slurm", "local", "toy"} <= set(ours)


def test_an_unknown_scheduler_in_a_profile_lists_the_registered_ones(
        toy: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / ".abcitrain" / "clusters" / "toy.yaml").write_text(
        TOY_PROFILE.replace("scheduler: toy", "scheduler: lsf"))
    checked = _abcitrain(toy, tmp_path, "check", "job.yaml")
    assert checked.returncode == 2
    said = checked.stderr + checked.stdout
    assert "'lsf' is not a valid scheduler" in said
    assert all(name in said for name in ("local", "pbs", "slurm", "toy", "uge"))


def test_the_registry_is_kept_while_the_path_is_unchanged_and_read_again_after(
        toy: dict[str, str], tmp_path: Path) -> None:
    """What the entry points said is kept in the private cache folder, keyed by the path's
    folders and their times: a distribution that comes or goes is seen at once, and a
    kept answer in a folder others may write is not trusted."""
    import shutil

    probe = ("import json\nfrom abcitrain.backends import registered\n"
             "print(json.dumps(registered()))")

    def schedulers() -> dict[str, str]:
        out = subprocess.run([sys.executable, "-c", probe], env=toy, capture_output=True,
                             text=True, timeout=60, check=True, cwd=ROOT)
        found: dict[str, str] = json.loads(out.stdout)
        return found

    assert schedulers()["toy"] == "toysched:ToyBackend"
    kept = Path(os.environ["XDG_CACHE_HOME"]) / "abcitrain" / "entry-points"
    data = json.loads((kept / "schedulers.json").read_text())
    assert data["found"]["toy"] == "toysched:ToyBackend"
    assert (kept.stat().st_mode & 0o777) == 0o700
    # the kept answer is what is read while nothing on the path changed
    data["found"]["toy"] = "toysched:KeptBackend"
    (kept / "schedulers.json").write_text(json.dumps(data))
    assert schedulers()["toy"] == "toysched:KeptBackend"
    # ... but not from a folder another user could have written
    kept.chmod(0o777)
    assert schedulers()["toy"] == "toysched:ToyBackend"
    kept.chmod(0o700)
    # uninstalled: its site folder changed, so the entry points are read again
    shutil.rmtree(tmp_path / "site" / "toysched-0.1.dist-info")
    assert "toy" not in schedulers()
    _install_toy(tmp_path / "site2")
    toy["PYTHONPATH"] = toy["PYTHONPATH"].replace(str(tmp_path / "site"),
                                                  str(tmp_path / "site2"))
    assert schedulers()["toy"] == "toysched:ToyBackend"
