"""The SSH transport against a REAL OpenSSH server (tests/infra/ssh-up.sh: sshd on dsnode1 =
127.0.0.2 and dsnode2 = 127.0.0.3, key-only logins): dsnode1 plays the access server (the jump
host), dsnode2 the login node, reached through it over a direct-tcpip channel as ProxyJump
does. Every test writes its own ssh config and known_hosts, and hides any ssh-agent, so what
is trusted and which key is offered are the test's. The last test submits to the REAL Slurm
cluster through both hops: upload, submit, status and logs over one connection."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from conftest import cli, submitted, wait_for

from abcitrain.errors import TransportError
from abcitrain.transport import RunResult
from abcitrain.transport.ssh import (
    AuthRefused,
    ChangedHostKey,
    CommandTimeout,
    SshTransport,
    UnknownHostKey,
    sync_project,
)


def _logins(ssh: Path) -> int:
    return (ssh / "sshd.log").read_text().count("Accepted publickey")


def _config(tmp_path: Path, ssh: Path, known: str | None = None, key: str | None = None) -> Path:
    """An ssh config with `jump` (dsnode1) and `login` (dsnode2, through jump); known_hosts
    holds ``known`` (default: the servers' real keys)."""
    port = (ssh / "port").read_text().strip()
    tmp_path.mkdir(parents=True, exist_ok=True)
    known_file = tmp_path / "known_hosts"
    known_file.write_text((ssh / "known_hosts").read_text() if known is None else known)
    identity = key or str(ssh / "id")
    config = tmp_path / "ssh_config"
    common = (f"  Port {port}\n  User root\n  IdentityFile {identity}\n  IdentitiesOnly yes\n"
              f"  UserKnownHostsFile {known_file}\n")
    config.write_text(f"Host jump\n  HostName dsnode1\n{common}"
                      f"Host login\n  HostName dsnode2\n  ProxyJump jump\n{common}")
    return config


@pytest.fixture
def remote(tmp_path: Path, ssh_nodes: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("ABCITRAIN_SSH_CONFIG", str(_config(tmp_path, ssh_nodes)))
    return ssh_nodes


def test_commands_run_through_the_jump_host_quoted_as_given(remote: Path) -> None:
    before = _logins(remote)
    with SshTransport("login") as ssh:
        assert [h.alias for h in ssh.hops] == ["jump", "login"]
        result = ssh.run(["printf", "%s|", "it's", "$(touch /tmp/PWNED-ssh)", "a b"])
        assert result.returncode == 0 and result.stdout == "it's|$(touch /tmp/PWNED-ssh)|a b|"
        failed = ssh.run(["bash", "-c", "echo to-stderr >&2; exit 3"], cwd="/tmp")
        assert (failed.returncode, failed.stderr) == (3, "to-stderr\n")
        assert ssh.run(["pwd"], cwd="/tmp").stdout == "/tmp\n"
        # one shell serves every command: nothing of one reaches the next
        assert ssh.run(["pwd"]).stdout != "/tmp\n"            # cd stayed in its subshell
        assert ssh.run(["printf", "no newline"]).stdout == "no newline"
        assert ssh.run(["cat"], timeout=10).stdout == ""         # stdin is /dev/null
        big = ssh.run(["sh", "-c", "seq 1 200000; seq 1 50000 >&2"])
        assert big.stdout.splitlines()[-1] == "200000" and len(big.stderr.splitlines()) == 50000
        # more stderr than the channel's 2 MB window before any stdout: no stall
        loud = ssh.run(["sh", "-c", "seq 1 800000 >&2; echo done"], timeout=60)
        assert loud.stdout == "done\n" and loud.stderr.splitlines()[-1] == "800000"
    assert not Path("/tmp/PWNED-ssh").exists()
    # one connection for the whole block: one login on the jump host, one on the login node
    assert _logins(remote) - before == 2


def test_files_move_over_sftp(remote: Path, tmp_path: Path) -> None:
    target = tmp_path / "there" / "deep" / "f.sh"
    with SshTransport("login") as ssh:
        ssh.write_text(str(target), "#!/bin/sh\necho hi\n", 0o755)
        assert ssh.read_text(str(target)) == "#!/bin/sh\necho hi\n"
        with pytest.raises(Exception, match="does not exist"):
            ssh.read_text(str(tmp_path / "nothing"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def _serving(sock: socket.socket) -> list[int]:
    """The sshd processes holding the server's end of ``sock``'s connection (ss's answer)."""
    here, port = sock.getsockname()[:2]
    far, far_port = sock.getpeername()[:2]
    out = subprocess.run(["ss", "-Htnp", "state", "established", "src", f"{far}:{far_port}",
                          "dst", f"{here}:{port}"], capture_output=True, text=True,
                         check=True).stdout
    return sorted({int(pid) for pid in re.findall(r"pid=(\d+)", out)})


def test_a_connection_lost_mid_upload_before_paramiko_notices_is_one_transport_error(
        remote: Path, tmp_path: Path) -> None:
    """A connection that dies while a file moves ends in ONE TransportError, even when
    closing the SFTP session fails too. In a CI run the close's own EOFError escaped in its
    place: paramiko's reader thread had not yet seen the connection go, so the close still
    tried to send. Made certain here: the server's session is stopped (it never answers or
    hangs up, so the reader sees nothing) and this end's socket refuses to send."""
    ssh = SshTransport("jump")                    # one hop: a socket of this machine's own
    ssh.write_text(str(tmp_path / "first"), "up\n")          # connected, SFTP open
    sock = ssh._clients[-1].get_transport().sock
    sessions = _serving(sock)
    assert sessions, "no sshd process found for the connection"
    try:
        for pid in sessions:
            os.kill(pid, signal.SIGSTOP)
        sock.shutdown(socket.SHUT_WR)             # every send now fails (EPIPE)
        with pytest.raises(TransportError, match=r"^the connection to .*jump.* was lost "
                                                 r"while uploading .*second"):
            ssh.write_text(str(tmp_path / "second"), "lost\n")
        assert ssh._clients == [] and ssh._sftp is None      # closed, nothing half-kept
        ssh.close()                                          # and closing again is quiet
    finally:
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)
    assert not (tmp_path / "second").exists()


def test_a_slow_command_times_out_with_its_own_error(remote: Path) -> None:
    start = time.monotonic()
    with SshTransport("login") as ssh, pytest.raises(CommandTimeout, match="within 1 s"):
        ssh.run(["sleep", "30"], timeout=1)
    assert time.monotonic() - start < 20


def test_the_project_is_uploaded_once_and_only_what_changed(remote: Path,
                                                             tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "data").mkdir(parents=True)
    (project / "data" / "in.txt").write_text("hello\n")
    (project / "run.sh").write_text("#!/bin/sh\n")
    (project / "run.sh").chmod(0o755)
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref")
    (project / "runs" / "a" / "checkpoints").mkdir(parents=True)
    (project / "runs" / "a" / "checkpoints" / "w.bin").write_text("x")
    (project / "runs" / "a" / "train.json").write_text("{}")
    (project / "big.raw").write_text("x")
    (project / ".abcitrainignore").write_text("# mine\n*.raw\n")
    there = tmp_path / "remote" / "proj"
    with SshTransport("login", local_root=str(project), remote_root=str(there)) as ssh:
        first = sync_project(ssh)
        assert sorted(first.sent) == [".abcitrainignore", "data/in.txt", "run.sh",
                                      "runs/a/train.json"]
        assert first.excluded == 3            # .git, runs/a/checkpoints, big.raw
        again = sync_project(ssh)
        assert again.sent == () and again.unchanged == 4
        (project / "data" / "in.txt").write_text("changed!\n")
        assert sync_project(ssh).sent == ("data/in.txt",)
        # a path in the project means the same path in the copy
        assert ssh.run(["cat", str(project / "data" / "in.txt")]).stdout == "changed!\n"
    assert (there / "data" / "in.txt").read_text() == "changed!\n"
    assert os.access(there / "run.sh", os.X_OK)
    assert not (there / ".git").exists() and not (there / "big.raw").exists()


def test_unknown_changed_and_refused_each_have_their_error(tmp_path: Path, ssh_nodes: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    real = (ssh_nodes / "known_hosts").read_text()
    jump_only = "".join(line + "\n" for line in real.splitlines() if "dsnode1" in line)
    before = _logins(ssh_nodes)
    cases = [("unknown", _config(tmp_path / "u", ssh_nodes, known=jump_only), UnknownHostKey,
              "abcitrain ssh trust login")]
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    forged = real.replace(real.split()[2], other.with_suffix(".pub").read_text().split()[1])
    cases.append(("changed", _config(tmp_path / "c", ssh_nodes, known=forged), ChangedHostKey,
                  "has CHANGED"))
    stranger = tmp_path / "stranger_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    cases.append(("refused", _config(tmp_path / "r", ssh_nodes, key=str(stranger)), AuthRefused,
                  "refused every key"))
    # the real key, encrypted, and no agent: never offered, and the message says so
    locked = tmp_path / "locked_key"
    shutil.copy(ssh_nodes / "id", locked)
    locked.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", "a passphrase", "-f", str(locked)],
                   check=True)
    cases.append(("locked", _config(tmp_path / "l", ssh_nodes, key=str(locked)), AuthRefused,
                  "is encrypted and no ssh-agent holds it"))
    for name, config, error, words in cases:
        with pytest.raises(error, match=words):
            SshTransport("login", config_file=config).run(["touch", f"/tmp/ran-{name}"])
        assert not Path(f"/tmp/ran-{name}").exists()
    # the unknown key was refused after the jump host's login, the changed one before any
    # (and the locked key logs in nowhere)
    assert _logins(ssh_nodes) - before == 1


def test_trust_adds_a_key_only_when_asked_and_never_replaces_one(
        tmp_path: Path, ssh_nodes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    real = (ssh_nodes / "known_hosts").read_text()
    jump_only = "".join(line + "\n" for line in real.splitlines() if "dsnode1" in line)
    config = _config(tmp_path, ssh_nodes, known=jump_only)
    monkeypatch.setenv("ABCITRAIN_SSH_CONFIG", str(config))
    known = tmp_path / "known_hosts"
    declined = cli("ssh", "trust", "login", ok=False)      # no input: the answer is no
    assert declined.exit_code == 1 and "not trusted" in declined.output
    assert known.read_text() == jump_only
    server_fp = subprocess.run(["ssh-keygen", "-l", "-f", str(ssh_nodes / "host_key.pub")],
                               capture_output=True, text=True, check=True).stdout.split()[1]
    out = cli("ssh", "trust", "login", "--yes").output
    assert server_fp in out and f"added to {known}" in out
    port = (ssh_nodes / "port").read_text().strip()
    assert known.read_text().splitlines()[-1].startswith(f"[dsnode2]:{port} ssh-ed25519 ")
    assert "known_hosts already trusts this key" in cli("ssh", "trust", "login").output
    assert "`hostname` says" in cli("ssh", "check", "login").output
    # a changed key is not replaced by trust: the old one must be removed knowingly
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known.write_text(jump_only + f"[dsnode2]:{port} ssh-ed25519 "
                     + other.with_suffix(".pub").read_text().split()[1] + "\n")
    refused = cli("ssh", "trust", "login", "--yes", ok=False)
    assert refused.exit_code == 2 and "ssh-keygen -R" in refused.output


def _laptop_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    cluster: str) -> tuple[Path, Path]:
    """A project folder on the "laptop" (the current folder) whose profile layer sends
    ``cluster``'s jobs over SSH to the login node, whose copies live under the other."""
    project = tmp_path / "laptop" / "proj"
    (project / ".abcitrain" / "clusters").mkdir(parents=True)
    monkeypatch.chdir(project)
    there = tmp_path / "cluster-home" / "work"
    (project / ".abcitrain" / "clusters" / f"{cluster}.yaml").write_text(yaml.safe_dump(
        {"login": {"ssh": "login", "workdir": str(there), "mode": "ssh"}}))
    return project, there


def _ended(job: str) -> dict[str, object] | None:
    """The job's `status --json` row once it has ended (asked over SSH)."""
    row: dict[str, object] = json.loads(cli("status", job, "--json").output)[0]
    return row if row["state"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT") else None


@pytest.mark.parametrize("cluster", ["slurm-test", "sge-test"])
def test_submit_follow_cancel_and_read_logs_through_the_jump_host(
        remote: Path, tmp_path: Path, cluster: str, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """laptop -> jump -> login -> sbatch / qsub -> the job runs -> its log comes back, the
    project folder uploaded first; `submit` makes one connection (two logins: jump, login);
    a second job is cancelled the same way."""
    request.getfixturevalue("slurm_cluster" if cluster == "slurm-test" else "sge_cluster")
    project, there = _laptop_project(tmp_path, monkeypatch, cluster)
    (project / "data").mkdir()
    (project / "data" / "in.txt").write_text("data from the laptop\n")
    resource = "gpu" if cluster == "slurm-test" else "rt_F"
    spec = project / "job.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "remote", "cluster": cluster, "resource": resource, "walltime": "0:05:00",
        "command": ["bash", "-c", 'cat data/in.txt; echo "in $PWD"']}))
    before = _logins(remote)
    out = cli("submit", str(spec)).output
    assert _logins(remote) - before == 2, out
    assert "uploaded 3 changed files" in out      # data/in.txt, job.yaml, the profile layer
    job = next(line.split()[3] for line in out.splitlines() if line.startswith("submitted "))
    row = wait_for(lambda: _ended(job), 120, f"remote job {job}")
    assert isinstance(row, dict) and row["state"] == "COMPLETED", row
    log = cli("logs", job).output
    assert "data from the laptop" in log and f"in {there / 'proj'}" in log
    assert not list(project.glob("remote.*")) and not list(project.glob("slurm-*.out"))
    held = next(line.split()[3] for line in cli("submit", "--hold", str(spec)).output
                .splitlines() if line.startswith("submitted "))
    cli("cancel", held)
    if cluster == "slurm-test":
        assert wait_for(lambda: json.loads(cli("status", held, "--json").output)[0]["state"]
                        == "CANCELLED", 120, f"remote job {held} cancelled")
    else:     # Grid Engine settles a job deleted before it started 30 s later: gone is enough
        assert wait_for(lambda: subprocess.run(["qstat", "-j", held], capture_output=True,
                                               check=False).returncode != 0,
                        60, f"remote job {held} deleted")


def test_a_log_folder_the_upload_leaves_out_is_made_on_the_login_node(
        remote: Path, tmp_path: Path, slurm_cluster: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The laptop's log folder holds only job logs, which are never uploaded, so the login
    node's copy has no such folder: it is made there before sbatch runs (Slurm would fail
    the job before its first line, with no output to read)."""
    project, there = _laptop_project(tmp_path, monkeypatch, "slurm-test")
    (project / "logs").mkdir()
    (project / "logs" / "old.o12").write_text("an earlier job's log\n")
    spec = project / "job.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "inlogs", "cluster": "slurm-test", "resource": "gpu", "walltime": "0:05:00",
        "output": "logs/{name}.o{job_id}", "command": ["echo", "wrote its log"]}))
    job = submitted(str(spec))
    assert not (there / "proj" / "logs" / "old.o12").exists()     # the upload left it out
    row = wait_for(lambda: _ended(job), 120, f"remote job {job}")
    assert isinstance(row, dict) and row["state"] == "COMPLETED", row
    assert (there / "proj" / "logs" / f"inlogs.o{job}").read_text() == "wrote its log\n"
    assert "wrote its log" in cli("logs", job).output


def test_ssh_config_hops_follow_openssh(tmp_path: Path) -> None:
    """Resolution only (no server): Host, HostName, User, Port, IdentityFile, ProxyJump
    chains (a jump host's own ProxyJump first), user@host:port forms, and a loop refused."""
    from abcitrain.errors import InputError
    from abcitrain.transport.sshconfig import resolve

    config = tmp_path / "config"
    config.write_text("Host abci\n  HostName login.abci.example\n  User u123\n"
                      "  ProxyJump as,bob@relay:2200\n  IdentityFile ~/.ssh/id_abci\n"
                      "Host as\n  HostName as.v3.abci.example\n  User u123\n  ProxyJump gw\n"
                      "Host gw\n  Port 2022\n"
                      "Host loop1\n  ProxyJump loop2\nHost loop2\n  ProxyJump loop1\n")
    hops = resolve("abci", config)
    assert [(h.alias, h.hostname, h.port) for h in hops] == [
        ("gw", "gw", 2022), ("as", "as.v3.abci.example", 22), ("relay", "relay", 2200),
        ("abci", "login.abci.example", 22)]
    assert hops[2].user == "bob" and hops[-1].user == "u123"
    assert hops[-1].identity_files == (str(Path("~/.ssh/id_abci").expanduser()),)
    assert hops[0].known_hosts_name == "[gw]:2022" and hops[1].known_hosts_name == \
        "as.v3.abci.example"
    assert resolve("me@10.0.0.5:2222", config)[-1].label == "me@10.0.0.5:2222"
    with pytest.raises(InputError, match="circle"):
        resolve("loop1", config)
    with pytest.raises(InputError, match="not a host"):
        resolve("a;b", config)


def test_exclusion_patterns() -> None:
    from abcitrain.transport.sync import DEFAULT_EXCLUDES, excluded

    assert excluded(".git/HEAD", DEFAULT_EXCLUDES)
    assert excluded("sub/.venv/bin/python", DEFAULT_EXCLUDES)
    assert excluded("runs/sft/checkpoints/step10/x", DEFAULT_EXCLUDES)
    assert excluded("weights/model.safetensors", DEFAULT_EXCLUDES)
    assert excluded("sft-tiny.o123", DEFAULT_EXCLUDES)
    assert not excluded("runs/sft/train.json", DEFAULT_EXCLUDES)
    assert not excluded("jobs/train.py", DEFAULT_EXCLUDES)
    assert not excluded("data/out.json", DEFAULT_EXCLUDES)


# sbatch, then the nearest sshd ancestor (the process serving this one connection) is killed
KILL_OWN_SESSION = ('sbatch "$@"; p=$$; while :; do p=$(ps -o ppid= -p "$p" | tr -d " "); '
                    'case "$(ps -o comm= -p "$p")" in sshd*) kill -9 "$p"; break;; esac; '
                    'done; sleep 30')


class _SessionKilledAfterSubmit(SshTransport):
    """The real transport, except that its first `sbatch` runs inside a remote shell that
    kills the sshd process serving this connection (its parent) once sbatch has returned:
    the scheduler HAS the job, the client never hears its id. ``queries_fail`` more runs
    after that fail as a still-dead network would."""

    def __init__(self, *args: object, queries_fail: int = 0, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.killed = False
        self.queries_fail = queries_fail

    def run(self, argv: Sequence[str], cwd: str | None = None,
            timeout: float | None = 120) -> RunResult:
        if argv and argv[0] == "sbatch" and not self.killed:
            self.killed = True
            argv = ["sh", "-c", KILL_OWN_SESSION, "sbatch", *argv[1:]]
        elif self.killed and self.queries_fail:
            self.queries_fail -= 1
            raise TransportError("the network is still down (test)")
        return super().run(argv, cwd, timeout)


def _remote_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    project = tmp_path / "laptop" / "proj"
    project.mkdir(parents=True)
    monkeypatch.chdir(project)
    spec = project / "job.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "once", "cluster": "slurm-test", "resource": "gpu", "walltime": "0:05:00",
        "hold": True, "command": ["true"]}))
    return project, spec


def _jobs_from(scripts_dir: Path) -> list[str]:
    """Slurm's jobs (any state it remembers) submitted from scripts in ``scripts_dir``."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%o"],
                         capture_output=True, text=True, check=True).stdout
    return [line.split("|")[0] for line in out.splitlines()
            if line.split("|", 1)[-1].startswith(str(scripts_dir))]


def test_a_jump_hosts_channel_closes_quietly_once_its_connection_is_gone() -> None:
    """The inner connection's transport thread closes its socket, the jump host's channel,
    as it shuts down; with the jump host's connection already gone that close raised
    EOFError in the thread (seen as a thread traceback in the connection-cut test below,
    which the pytest configuration now fails on)."""
    from abcitrain.transport.ssh import HopSocket

    class GoneChannel:          # what paramiko's Channel does once its transport is dead
        closes = 0

        def close(self) -> None:
            GoneChannel.closes += 1
            raise EOFError

        def recv(self, n: int) -> bytes:
            return b"x" * n

    sock = HopSocket(GoneChannel())
    sock.close()                                  # no exception
    assert GoneChannel.closes == 1 and sock.recv(3) == b"xxx"   # the channel's own methods


def test_a_connection_cut_mid_submit_yields_exactly_one_job(
        remote: Path, tmp_path: Path, slurm_cluster: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from abcitrain.batch.store import JobStore
    from abcitrain.service import submitting
    from abcitrain.service.plans import load_plan

    project, spec = _remote_project(tmp_path, monkeypatch)
    there = tmp_path / "cluster-home" / "proj"
    ssh = _SessionKilledAfterSubmit("login", local_root=str(project), remote_root=str(there))
    store = JobStore()
    try:
        sub = submitting.submit(load_plan(spec), store, transport=ssh)
        assert ssh.killed and sub.job_id is not None
        assert _jobs_from(there / ".abcitrain" / "scripts") == [sub.job_id]
        assert store.get("slurm-test", sub.job_id) is not None
        assert store.pending_for("slurm-test", submitting._digest(load_plan(spec),
                                                               str(project))) == []
    finally:
        ssh.run(["scancel", *_jobs_from(there / ".abcitrain" / "scripts")])
        ssh.close()


def test_retrying_a_submit_whose_answer_was_lost_gives_the_same_job(
        remote: Path, tmp_path: Path, slurm_cluster: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from abcitrain.batch.store import JobStore
    from abcitrain.service import submitting
    from abcitrain.service.plans import load_plan

    project, spec = _remote_project(tmp_path, monkeypatch)
    there = tmp_path / "cluster-home" / "proj"
    store = JobStore()
    cut = _SessionKilledAfterSubmit("login", local_root=str(project), remote_root=str(there),
                                    queries_fail=1)
    try:
        with pytest.raises(TransportError, match="looks for its start mark"):
            submitting.submit(load_plan(spec), store, transport=cut)
        cut.close()
        first = _jobs_from(there / ".abcitrain" / "scripts")
        assert len(first) == 1          # the scheduler took it; nobody heard the id
        again = SshTransport("login", local_root=str(project), remote_root=str(there))
        sub = submitting.submit(load_plan(spec), store, transport=again)
        assert sub.job_id == first[0]
        assert any("not submitted again" in str(w) for w in sub.warnings)
        assert _jobs_from(there / ".abcitrain" / "scripts") == first
        # recorded now: the next submit of the same spec is a new job, as asked
        third = submitting.submit(load_plan(spec), store, transport=again)
        assert third.job_id != first[0]
        assert len(_jobs_from(there / ".abcitrain" / "scripts")) == 2
    finally:
        ids = _jobs_from(there / ".abcitrain" / "scripts")
        if ids:
            subprocess.run(["scancel", *ids], check=False)
        cut.close()


def test_a_profile_reaches_its_login_node_over_ssh_only_away_from_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No server needed: which transport a profile's `login` gives (nothing connects until
    a command runs). auto: SSH only where the scheduler's submit command is not installed."""
    from abcitrain.errors import InputError
    from abcitrain.service import common
    from abcitrain.transport import LocalTransport

    layer = tmp_path / ".abcitrain" / "clusters"
    layer.mkdir(parents=True)
    (tmp_path / "ssh_config").write_text("Host abci\n  HostName login.example\n")
    monkeypatch.setenv("ABCITRAIN_SSH_CONFIG", str(tmp_path / "ssh_config"))

    def transport(login: dict[str, str], path: str | None = None) -> object:
        (layer / "slurm-test.yaml").write_text(yaml.safe_dump({"login": login}))
        common.close_transports()
        if path is not None:
            monkeypatch.setenv("PATH", path)
        return common.transport_for("slurm-test", str(tmp_path / "proj"))

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\n")
    (bin_dir / "sbatch").chmod(0o755)
    assert isinstance(transport({"ssh": "abci"}, str(bin_dir)), LocalTransport)
    away = transport({"ssh": "abci"}, str(tmp_path / "empty"))
    assert isinstance(away, SshTransport) and away.target.hostname == "login.example"
    assert away.remote_path(str(tmp_path / "proj" / "a.sh")) == "abcitrain/proj/a.sh"
    assert isinstance(transport({"ssh": "abci", "mode": "ssh"}, str(bin_dir)), SshTransport)
    assert isinstance(transport({"ssh": "abci", "mode": "local"}, ""), LocalTransport)
    with pytest.raises(InputError, match="mode"):
        transport({"ssh": "abci", "mode": "sometimes"})
    common.close_transports()


def test_a_function_runs_on_a_cluster_reached_over_ssh(
        remote: Path, tmp_path: Path, slurm_cluster: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The function executor from a laptop: the project (with the user's module) goes up,
    the pickled call goes to the login node's copy of the executor's folder, the job runs
    there, and its result and log come back."""
    import importlib

    import submitit

    project, there = _laptop_project(tmp_path, monkeypatch, "slurm-test")
    (project / "usercode.py").write_text("import socket\n\ndef add(a, b):\n"
                                         "    print('adding on', socket.gethostname())\n"
                                         "    return a + b\n")
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.delitem(sys.modules, "usercode", raising=False)
    user = importlib.import_module("usercode")
    ex = submitit.AutoExecutor(str(project / "fn"), cluster="abcitrain",
                               abcitrain_cluster="slurm-test")
    # this machine plays the login node too: its Python has abcitrain installed
    ex.update_parameters(timeout_min=5, abcitrain_resource="gpu",
                         abcitrain_python=sys.executable)
    job = ex.submit(user.add, 20, 22)
    assert job.result() == 42
    copy = there / "proj" / "fn"
    assert (copy / f"{job.job_id}_submitted.pkl").is_file()        # went up under its name
    assert (project / "fn" / f"{job.job_id}_0_result.pkl").is_file()   # came back
    assert "adding on" in (job.stdout() or "")
    assert (there / "proj" / "usercode.py").is_file()


def test_a_function_executor_whose_login_python_lacks_abcitrain_says_so_before_submitting(
        remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a usable abcitrain_python the job would fail on the cluster with its reason in
    a file there ("No output/error stream produced" here): asked first, over the same
    connection, and refused with the login node's own words; nothing is submitted."""
    import submitit

    from abcitrain.errors import InputError

    project = tmp_path / "laptop" / "proj"
    (project / ".abcitrain" / "clusters").mkdir(parents=True)
    (project / ".abcitrain" / "clusters" / "slurm-test.yaml").write_text(yaml.safe_dump(
        {"login": {"ssh": "login", "workdir": str(tmp_path / "there"), "mode": "ssh"}}))
    monkeypatch.chdir(project)
    ex = submitit.AutoExecutor(str(project / "fn"), cluster="abcitrain",
                               abcitrain_cluster="slurm-test")
    # Debian's own Python: no abcitrain, no submitit
    ex.update_parameters(timeout_min=5, abcitrain_resource="gpu",
                         abcitrain_python="/usr/bin/python3")
    with pytest.raises(InputError) as info:
        ex.submit(print, "never")
    said = str(info.value.problems[0])
    assert "/usr/bin/python3 on slurm-test's login node cannot import abcitrain" in said
    assert "No module named 'abcitrain'" in said and "abcitrain_python=" in said
    assert not (tmp_path / "there").exists()                 # nothing went up


def test_a_dry_run_over_ssh_says_where_it_would_go_and_what_it_would_upload(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No server needed: a dry run connects to nothing, but says which login node the job
    would go to and that the project would be uploaded there first."""
    project = tmp_path / "proj"
    (project / ".abcitrain" / "clusters").mkdir(parents=True)
    (project / ".abcitrain" / "clusters" / "slurm-test.yaml").write_text(yaml.safe_dump(
        {"login": {"ssh": "login", "workdir": "work", "mode": "ssh"}}))
    (project / "job.yaml").write_text(yaml.safe_dump({
        "name": "far", "cluster": "slurm-test", "resource": "gpu", "walltime": "0:05:00",
        "command": ["true"]}))
    monkeypatch.chdir(project)
    out = cli("submit", "--dry-run", "job.yaml").output
    assert (f"# over SSH to login (the login node): the project folder {project} would be "
            "uploaded first (only files changed since the last upload) to its copy under "
            "work/ in the home folder there") in out, out
    data = json.loads(cli("submit", "--dry-run", "--json", "job.yaml").stdout)
    assert data["host"] == "login" and data["dry_run"] is True
