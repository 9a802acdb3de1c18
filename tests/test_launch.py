"""The in-job launcher: node lists from every scheduler's variables, ports, hostfiles and the
commands each launcher kind runs, as argv and environment. They run for real in test_kit.py
(one node; two Slurm nodes by srun) and test_launch_ssh.py (two nodes by ssh, pdsh, Open MPI).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli

from abcitrain.launch.commands import (
    Invocation,
    LauncherSettings,
    Rendezvous,
    hostfile_text,
    invocations,
    settings_from,
)
from abcitrain.launch.nodes import expand_hostlist, master_port, node_list
from abcitrain.launch.run import LaunchOptions, _wait_all, plan_launch, stop_time


@pytest.mark.parametrize(("text", "hosts"), [
    ("n1", ["n1"]),
    ("n[1-2]", ["n1", "n2"]),
    ("gpu[01-03,07],login1", ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]),
    ("a[08-10]-ib", ["a08-ib", "a09-ib", "a10-ib"]),
    ("x1,y[2-3],z", ["x1", "y2", "y3", "z"]),
])
def test_slurm_host_lists_expand(text: str, hosts: list[str]) -> None:
    assert expand_hostlist(text) == hosts


def test_a_broken_host_list_is_refused() -> None:
    with pytest.raises(ValueError, match="host range"):
        expand_hostlist("n[1-x]")


def test_node_lists_from_each_scheduler(tmp_path: Path) -> None:
    pbs = tmp_path / "pbs"        # one line per rank, as PBS Pro writes it
    pbs.write_text("hnode001\nhnode001\nhnode002\nhnode002\n")
    assert node_list({"PBS_NODEFILE": str(pbs)}).hosts == ("hnode001", "hnode002")
    abci2 = tmp_path / "hostlist"
    abci2.write_text("g0001\ng0002\n")
    assert node_list({"SGE_JOB_HOSTLIST": str(abci2)}).hosts == ("g0001", "g0002")
    pe = tmp_path / "pe"          # host, slots, queue, processor range
    pe.write_text("vm 1 all.q@vm UNDEFINED\nsgenode1 1 all.q@sgenode1 UNDEFINED\n")
    found = node_list({"PE_HOSTFILE": str(pe)})
    assert found.hosts == ("vm", "sgenode1") and found.source == "PE_HOSTFILE"
    assert node_list({"SLURM_JOB_NODELIST": "n[1-2]"}).hosts == ("n1", "n2")
    # the rendered script's own file wins over the scheduler's
    mine = tmp_path / "mine"
    mine.write_text("first\n")
    assert node_list({"ABCITRAIN_NODEFILE": str(mine), "PBS_NODEFILE": str(pbs)}).hosts == (
        "first",)
    assert node_list({}).source == "this machine"


def test_master_port_comes_from_the_job_id() -> None:
    assert master_port("1234.pbs1") == 11234
    assert master_port("51234") == 11234       # 10000 + 51234 % 50000
    assert master_port("77[3]") == 10077
    assert 1024 < master_port(None) < 65536     # outside a job: a free port


RDV = Rendezvous(("h1", "h2"), 4, "h1", 10042, "42")
ENV = {"MASTER_ADDR": "h1", "MASTER_PORT": "10042", "NCCL_IB_DISABLE": "1"}
CMD = ["python", "jobs/train.py", "runs/x/train.json"]


def test_hostfile_has_one_line_per_node_with_its_slots() -> None:
    assert hostfile_text(RDV) == "h1 slots=4\nh2 slots=4\n"


def test_torchrun_one_node_runs_here() -> None:
    one = Rendezvous(("h1",), 2, "127.0.0.1", 10042)
    [inv] = invocations(LauncherSettings(), one, CMD, "hf", "/w", ENV)
    assert inv.argv[:3] == (sys.executable, "-m", "torch.distributed.run")
    assert "--nproc_per_node=2" in inv.argv and "--master_port=10042" in inv.argv
    assert inv.argv[-3:] == (sys.executable, "jobs/train.py", "runs/x/train.json")


def test_torchrun_over_srun_and_over_ssh() -> None:
    [srun] = invocations(LauncherSettings("torchrun", "srun"), RDV, CMD, "hf", "/w", ENV)
    assert srun.argv[:4] == ("srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1")
    assert "--rdzv_endpoint=h1:10042" in srun.argv and "--rdzv_id=42" in srun.argv
    assert not srun.signal_ranks        # srun would hand USR2 to torchrun: STOP_AT instead
    local, remote = invocations(LauncherSettings("torchrun", "ssh", ssh_port=2222), RDV, CMD,
                                "hf", "/work dir", ENV)
    assert local.host == "h1" and local.argv[0] == sys.executable
    assert remote.argv[:6] == ("ssh", "-o", "BatchMode=yes", "-p", "2222", "h2")
    # the launcher knows which agent serves the rendezvous store; torch would guess by name
    assert "--rdzv_conf=is_host=1" in local.argv
    assert "--rdzv_conf=is_host=0" in shlex.split(remote.argv[-1])
    assert not any(a.startswith("--rdzv_conf") for a in srun.argv)   # one argv for all nodes
    words = shlex.split(remote.argv[-1])            # the remote shell line, quoted safely
    assert words[:3] == ["cd", "/work dir", "&&"] and "NCCL_IB_DISABLE=1" in words


def test_deepspeed_runner_across_nodes() -> None:
    settings = settings_from({"kind": "deepspeed", "multinode": "pdsh", "ssh_port": 2200,
                              "ssh_port_env": "SSH_PORT"})
    [inv] = invocations(settings.for_job({"SSH_PORT": "2234"}), RDV, CMD, "/tmp/hf", "/w", ENV)
    argv = list(inv.argv)
    assert argv[1:3] == ["-m", "deepspeed.launcher.runner"]
    assert argv[argv.index("--hostfile") + 1] == "/tmp/hf"
    assert argv[argv.index("--master_addr") + 1] == "h1"
    assert argv[argv.index("--launcher") + 1] == "pdsh"
    assert argv[argv.index("--ssh_port") + 1] == "2234"      # the job's own port wins
    assert "--no_ssh_check" in argv
    # --local_rank=N would land between the interpreter and the script
    assert "--no_local_rank" in argv and "--no_python" in argv
    [ompi] = invocations(settings_from({"kind": "deepspeed", "multinode": "openmpi"}), RDV,
                         CMD, "/tmp/hf", "/w", ENV)
    assert "openmpi" in ompi.argv and "--ssh_port" not in ompi.argv


def test_profile_ssh_options_reach_every_way_across_nodes() -> None:
    base = {"ssh_port": 2222, "ssh_args": ["-i", "~/.ssh/id_cluster", "-o", "ConnectTimeout=10"]}
    opts = "-i ~/.ssh/id_cluster -o ConnectTimeout=10"
    _, remote = invocations(settings_from({"kind": "torchrun", "multinode": "ssh", **base}),
                            RDV, CMD, "hf", "/w", ENV)
    assert remote.argv[:9] == ("ssh", "-o", "BatchMode=yes", "-i", "~/.ssh/id_cluster", "-o",
                               "ConnectTimeout=10", "-p", "2222")
    [pdsh] = invocations(settings_from({"kind": "deepspeed", "multinode": "pdsh", **base}),
                         RDV, CMD, "hf", "/w", ENV)
    assert pdsh.env == {"PDSH_SSH_ARGS_APPEND": opts}            # DeepSpeed adds -p itself
    assert pdsh.argv[pdsh.argv.index("--ssh_port") + 1] == "2222"
    assert pdsh.text().startswith(f"'PDSH_SSH_ARGS_APPEND={opts}' ")
    for kind in ("deepspeed", "mpirun"):
        [inv] = invocations(settings_from({"kind": kind, **base}), RDV, CMD, "hf", "/w", ENV)
        assert inv.env == {"OMPI_MCA_plm_rsh_args": f"{opts} -p 2222"}
    one = Rendezvous(("h1",), 8, "127.0.0.1", 10042, "42")
    [single] = invocations(settings_from({"kind": "mpirun", **base}), one, CMD, "hf", "/w", ENV)
    assert single.env == {}                                      # no ssh on one node


@pytest.mark.parametrize("bad", ["-o StrictHostKeyChecking=no", "$(id)", "a;b", "'x'", ""])
def test_ssh_options_that_a_splitter_or_a_shell_would_misread_are_refused(
        tmp_path: Path, bad: str) -> None:
    clusters = tmp_path / ".abcitrain" / "clusters"
    clusters.mkdir(parents=True)
    (clusters / "mine.yaml").write_text(
        f"extends: local\nlauncher:\n  kind: torchrun\n  ssh_args: [-p, {bad!r}]\n")
    result = cli("clusters", "show", "mine", ok=False)
    assert result.exit_code == 2
    assert "launcher.ssh_args" in result.output and "without blanks" in result.output


def test_mpirun_exports_the_rendezvous_and_nccl_settings() -> None:
    [inv] = invocations(LauncherSettings("mpirun"), RDV, CMD, "/tmp/hf", "/w", ENV)
    argv = list(inv.argv)
    assert argv[:3] == ["mpirun", "-np", "8"]
    exported = {argv[i + 1] for i, a in enumerate(argv) if a == "-x"}
    assert exported == set(ENV)


def test_the_plan_reads_the_job_environment(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes"
    nodes.write_text("n1\nn2\n")
    env = {"ABCITRAIN_NODEFILE": str(nodes), "ABCITRAIN_JOB_ID": "77",
           "ABCITRAIN_GPUS_PER_NODE": "4", "ABCITRAIN_JOB_START": "1000",
           "ABCITRAIN_WALLTIME_S": "3600"}
    opts = LaunchOptions(command=tuple(CMD), kind="torchrun", stop_before_s=600)
    plan = plan_launch(opts, env, "/tmp/hf")
    assert plan.rendezvous.hosts == ("n1", "n2") and plan.rendezvous.ranks_per_node == 4
    assert plan.env["MASTER_ADDR"] == "n1" and plan.env["MASTER_PORT"] == "10077"
    assert plan.env["ABCITRAIN_STOP_AT"] == "4000" == str(int(stop_time(opts, env) or 0))


def test_one_node_takes_a_free_port_not_one_derived_from_the_job_id(tmp_path: Path) -> None:
    """Job 1 of one local spool and job 1 of another (two test runs, two users) would both
    derive 10001; on one node nothing else needs to agree on the port, so it is a free one."""
    nodes = tmp_path / "nodes"
    nodes.write_text("n1\n")
    env = {"ABCITRAIN_NODEFILE": str(nodes), "ABCITRAIN_JOB_ID": "1"}
    import socket

    with socket.socket() as taken:
        with contextlib.suppress(OSError):       # taken already, by another run: as good
            taken.bind(("127.0.0.1", 10001))    # what job 1 would have derived
        plan = plan_launch(LaunchOptions(command=tuple(CMD), kind="torchrun"), env, "/tmp/hf")
        port = int(plan.env["MASTER_PORT"])
        assert plan.env["MASTER_ADDR"] == "127.0.0.1" and port != 10001
        with socket.socket() as probe:           # and it is free now
            probe.bind(("127.0.0.1", port))


def test_launch_dry_run_prints_the_commands(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = tmp_path / "nodes"
    nodes.write_text("n1\nn2\n")
    monkeypatch.setenv("ABCITRAIN_NODEFILE", str(nodes))
    monkeypatch.setenv("ABCITRAIN_CLUSTER", "slurm")
    monkeypatch.setenv("ABCITRAIN_JOB_ID", "5")
    out = cli("launch", "--dry-run", "--nproc-per-node", "4", "--", "python", "train.py").output
    assert "2 nodes from ABCITRAIN_NODEFILE, 4 ranks each (8 in all), master n1:10005" in out
    assert "srun --nodes=2" in out                          # the slurm profile's launcher
    assert "n1 slots=4\nn2 slots=4\n" in out


def test_abci2_jobs_cross_nodes_on_the_ssh_port_the_job_was_given(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes"
    nodes.write_text("g0001\ng0002\n")
    env = {"ABCITRAIN_NODEFILE": str(nodes), "ABCITRAIN_CLUSTER": "abci2", "SSH_PORT": "2299"}
    [inv] = plan_launch(LaunchOptions(command=tuple(CMD)), env, "/tmp/hf").invocations
    assert inv.argv[inv.argv.index("--ssh_port") + 1] == "2299"
    del env["SSH_PORT"]                                     # else the profile's
    [inv] = plan_launch(LaunchOptions(command=tuple(CMD)), env, "/tmp/hf").invocations
    assert inv.argv[inv.argv.index("--ssh_port") + 1] == "2222"


def test_a_bad_signal_name_is_refused() -> None:
    result = cli("launch", "--signal", "NOPE", "--", "true", ok=False)
    assert result.exit_code == 2 and "not a signal" in result.output


def test_overriding_the_launcher_kind_takes_that_kinds_own_multinode_way(
        tmp_path: Path) -> None:
    nodes = tmp_path / "nodes"
    nodes.write_text("n1\nn2\n")
    env = {"ABCITRAIN_NODEFILE": str(nodes), "ABCITRAIN_CLUSTER": "slurm"}   # torchrun/srun
    plan = plan_launch(LaunchOptions(command=tuple(CMD), kind="deepspeed"), env, "/tmp/hf")
    assert plan.settings.multinode == "openmpi"
    argv = list(plan.invocations[0].argv)
    assert argv[argv.index("--launcher") + 1] == "openmpi"
    assert settings_from({"kind": "deepspeed"}).multinode == "openmpi"


def test_the_first_node_process_to_fail_ends_the_others_even_one_deaf_to_sigterm() -> None:
    """A node whose ranks cannot start must not leave the others waiting at the rendezvous:
    SIGTERM to them, SIGKILL after the grace period for one that ignores it."""
    argvs = [("sh", "-c", "sleep 0.5; exit 3"),
             ("sh", "-c", "trap '' TERM; sleep 60 & wait; sleep 60")]
    invs = tuple(Invocation(a, f"h{i}") for i, a in enumerate(argvs))
    procs = [subprocess.Popen(list(a), start_new_session=True) for a in argvs]
    sent: list[int] = []

    def send(sig: int) -> None:
        sent.append(sig)
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, sig)

    try:
        assert _wait_all(invs, procs, send, grace_s=1) == 3
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert sent == [signal.SIGTERM, signal.SIGKILL]
    assert procs[1].returncode == -signal.SIGKILL


def test_site_and_job_mpi_options_reach_deepspeeds_own_mpirun(tmp_path: Path) -> None:
    """The profile's launcher.mpirun_args and the job's --mpirun-arg go to DeepSpeed's Open
    MPI runner as --launcher_args; DeepSpeed's own runner (imported, not imitated) then
    builds an mpirun with bond0 instead of its default eth0."""
    from deepspeed.launcher.multinode_runner import OpenMPIRunner
    from deepspeed.launcher.runner import parse_args

    nodes = tmp_path / "nodes"
    nodes.write_text("n1\nn2\n")
    env = {"ABCITRAIN_NODEFILE": str(nodes), "ABCITRAIN_CLUSTER": "abci3"}
    site = ["--mca", "btl_tcp_if_include", "bond0", "-bind-to", "none"]
    clusters = tmp_path / ".abcitrain" / "clusters"
    clusters.mkdir(parents=True)
    (clusters / "abci3.yaml").write_text(
        "launcher: {kind: deepspeed, multinode: openmpi, mpirun_args: "
        + json.dumps(site) + "}\n")
    plan = plan_launch(LaunchOptions(command=tuple(CMD), mpirun_args=("--oversubscribe",)),
                       env, "/tmp/hf")
    argv = list(plan.invocations[0].argv)
    given = argv[argv.index("--launcher_args") + 1]
    assert shlex.split(given) == [*site, "--oversubscribe"]
    args = parse_args(argv[3:])
    mpirun = OpenMPIRunner(args, "e30=", {"n1": 2, "n2": 2}).get_cmd({}, {})
    assert mpirun[:2] == ["mpirun", "-n"] and "bond0" in mpirun and "eth0" not in mpirun
    assert mpirun[mpirun.index("-bind-to") + 1] == "none" and "--oversubscribe" in mpirun


def test_a_training_jobs_mpirun_args_reach_the_launch_command() -> None:
    from abcitrain.train.config import parse_train

    cfg = parse_train({"mode": "sft", "model": "llama2-7b", "data": "d.jsonl", "seq_len": 128,
                       "global_batch": 8, "steps": 1,
                       "mpirun_args": ["-mca", "coll", "^hcoll", "-map-by", "slot"]})
    assert cfg.mpirun_args == ("-mca", "coll", "^hcoll", "-map-by", "slot")
