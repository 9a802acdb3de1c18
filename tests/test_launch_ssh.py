"""Multi-node launches for real, over a real OpenSSH server: every way a profile can start
ranks on other nodes by ssh trains the kit on two "nodes" (dsnode1 and dsnode2, loopback
addresses served by the sshd of tests/infra/ssh-up.sh, host keys verified).

- torchrun per node, the second started by ``ssh -p PORT`` (the generic Grid Engine profile);
- DeepSpeed's runner with pdsh and the site's ssh port (ABCI 2.0);
- DeepSpeed's runner with Open MPI (ABCI 3.0; under PBS Open MPI starts its daemons through
  the scheduler, here through ssh, the only way it has on this machine);
- plain mpirun.

The first real runs found two faults the argv tests had not: DeepSpeed's launcher put
``--local_rank=0`` between the interpreter and the script, and torchrun's rendezvous store was
served by no node when the node file's name for the first host was not its hostname.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, cli

WAYS = [("torchrun", "ssh"), ("deepspeed", "pdsh"), ("deepspeed", "openmpi"),
        ("mpirun", "mpirun")]
#: ssh logins each way makes: the second node only (torchrun), or every node (pdsh ssh's
#: into both; mpirun reaches both names as other hosts and starts a daemon on each)
LOGINS = {"ssh": 1, "pdsh": 2, "openmpi": 2, "mpirun": 2}


def _cluster(folder: Path, ssh: Path, kind: str, multinode: str,
             ssh_config: Path | None = None) -> None:
    """A two-node CPU cluster whose launcher reaches the other node the given way (a project
    profile: plan and launch both run in ``folder``)."""
    clusters = folder / ".abcitrain" / "clusters"
    clusters.mkdir(parents=True, exist_ok=True)
    profile = {
        "extends": "local",
        "resource_types": {"cpu": {"limits": {"on-demand": {
            "max_nodes": 2, "max_walltime": "168:00:00"}}}},
        "launcher": {"kind": kind, "multinode": multinode,
                     "ssh_port": int((ssh / "port").read_text()),
                     "ssh_args": ["-F", str(ssh_config or ssh / "ssh_config")],
                     # the ranks' own traffic stays on loopback too
                     "env": {"GLOO_SOCKET_IFNAME": "lo"}}}
    (clusters / "ssh-test.yaml").write_text(yaml.safe_dump(profile))


def _planned_run(folder: Path, steps: int = 6) -> Path:
    """Plan the kit for 2 nodes x 1 rank, ZeRO-3 (partitioned over both nodes)."""
    (folder / "jobs").symlink_to(ROOT / "jobs")
    spec = folder / "two.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "two", "cluster": "ssh-test", "resource": "cpu", "walltime": "0:20:00",
        "nodes": 2,
        "train": {"mode": "sft", "model": "jobs/models/tiny-llama", "init": "random",
                  "data": "jobs/data/sft.jsonl", "seq_len": 48, "global_batch": 8,
                  "steps": steps, "lr": 0.002, "warmup_steps": 2, "precision": "fp32",
                  "ranks_per_node": 1, "zero": 3}}))
    cli("plan", str(spec))
    return folder / "runs" / "two"


def _launch(folder: Path, job_id: str, timeout: float = 300,
            walltime: tuple[int, int] | None = None) -> subprocess.CompletedProcess[str]:
    """``abcitrain launch`` as a job script on dsnode1 runs it: the scheduler's node list
    names both nodes. ``walltime``: (job start, walltime in s) as a rendered script exports
    them; the ranks are asked to stop 60 s before the end."""
    nodes = folder / "nodes"
    nodes.write_text("dsnode1\ndsnode2\n")
    env = {**os.environ, "ABCITRAIN_NODEFILE": str(nodes), "ABCITRAIN_CLUSTER": "ssh-test",
           "ABCITRAIN_JOB_ID": job_id, "DS_ACCELERATOR": "cpu",
           # the tests run as root, which Open MPI refuses unless told twice
           "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           # Open MPI's daemons call back over loopback, not the machine's other interfaces
           "OMPI_MCA_oob_tcp_if_include": "lo"}
    if walltime:
        env["ABCITRAIN_JOB_START"], env["ABCITRAIN_WALLTIME_S"] = map(str, walltime)
    return subprocess.run(
        [sys.executable, "-m", "abcitrain", "launch", "--nproc-per-node", "1",
         "--stop-before", "60",
         "--state", "runs/two/state.json", "--", "python", "jobs/train.py",
         "runs/two/train.json"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _logins(ssh: Path) -> int:
    return (ssh / "sshd.log").read_text().count("Accepted publickey")


@pytest.mark.parametrize(("kind", "multinode"), WAYS, ids=[f"{k}-{m}" for k, m in WAYS])
def test_the_kit_trains_on_two_nodes_reached_by_ssh(tmp_path: Path, ssh_nodes: Path,
                                                    kind: str, multinode: str) -> None:
    _cluster(tmp_path, ssh_nodes, kind, multinode)
    run = _planned_run(tmp_path)
    before = _logins(ssh_nodes)
    job_id = str(4300 + WAYS.index((kind, multinode)))
    proc = _launch(tmp_path, job_id)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert ("2 nodes from ABCITRAIN_NODEFILE, 1 rank each (2 in all), master "
            f"dsnode1:{10000 + int(job_id)}, launcher {kind}") in out
    assert "sft on 2 ranks" in out
    assert _logins(ssh_nodes) - before >= LOGINS[multinode], "the ranks did not go by ssh"
    state = json.loads((run / "state.json").read_text())
    assert (state["status"], state["step"]) == ("done", 6)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 7))
    assert {r["job_id"] for r in rows} == {job_id}       # the job's variables crossed over
    assert (run / "model" / "model.safetensors").is_file()


def test_a_node_whose_host_key_is_wrong_is_refused_and_the_others_stop(
        tmp_path: Path, ssh_nodes: Path) -> None:
    """ssh refuses dsnode2 (its key is not the one known), and launch ends the rank already
    waiting on dsnode1 instead of leaving it at the rendezvous until torch's timeout."""
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    port = (ssh_nodes / "port").read_text().strip()
    key = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    known = tmp_path / "known_hosts"
    known.write_text(f"[dsnode1]:{port} {key}\n[dsnode2]:{port} {key}\n")
    config = tmp_path / "ssh_config"
    config.write_text((ssh_nodes / "ssh_config").read_text().replace(
        str(ssh_nodes / "known_hosts"), str(known)))
    _cluster(tmp_path, ssh_nodes, "torchrun", "ssh", ssh_config=config)
    run = _planned_run(tmp_path)
    proc = _launch(tmp_path, "4310", timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Host key verification failed" in out
    assert "[dsnode2] ssh exited with status 255; stopping the ranks on the other nodes" in out
    assert not (run / "state.json").exists()


def test_ranks_on_nodes_no_signal_reaches_stop_before_the_walltime_and_resume(
        tmp_path: Path, ssh_nodes: Path) -> None:
    """ABCI 2.0's way (DeepSpeed over pdsh): the ranks run under sshd on both nodes, outside
    the job's process group, so the stop signal cannot reach them; they stop at the time
    launch hands them (ABCITRAIN_STOP_AT), checkpoint, and the next job resumes: every step
    trained once, the run ends at exactly its steps.

    No clock decides the outcome: the first job's stop time is the moment it is launched
    (started now, walltime = the 60 s stop_before), so however slow or fast this machine is,
    the ranks reach it before their first step ends, and they look at it after every step:
    they stop after exactly one step."""
    _cluster(tmp_path, ssh_nodes, "deepspeed", "pdsh")
    steps = 12
    run = _planned_run(tmp_path, steps=steps)
    first = _launch(tmp_path, "4320", walltime=(int(time.time()), 60))
    out = first.stdout + first.stderr
    assert first.returncode == 0, out[-4000:]
    state = json.loads((run / "state.json").read_text())
    assert (state["status"], state["step"]) == ("stopped", 1), state
    assert f"stopped at step 1 of {steps}" in out
    second = _launch(tmp_path, "4321")
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    state = json.loads((run / "state.json").read_text())
    assert (state["status"], state["step"]) == ("done", steps)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [(r["step"], r["job_id"]) for r in rows if "loss" in r]
    assert trained == [(1, "4320")] + [(s, "4321") for s in range(2, steps + 1)], \
        "a step was lost or trained twice"
