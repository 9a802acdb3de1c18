"""100 submissions over ONE SSH connection (abcitrain's SSH transport) against 100 separate
``ssh HOST sbatch ...`` processes, the way users script it today; same real server, same real
Slurm, one run side by side. Goal: at least 10x faster.

Needs the test infrastructure up (run as root on this Debian machine)::

    bash tests/infra/ssh-up.sh && bash tests/infra/slurm-up.sh
    .venv/bin/python bench/ssh_submit.py [--jobs 100]
    bash tests/infra/slurm-down.sh && bash tests/infra/ssh-down.sh

The login node is dsnode2, reached through dsnode1 as the jump host (ProxyJump) on both sides.
Every job is submitted held (``--hold``) and cancelled at the end, by id; the script checks
that every submission returned a job id and that the two sides submitted the same number.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SSH_TEST = Path("/run/abcitrain-ssh-test")
SUBMIT = ["sbatch", "--hold", "--parsable", "--partition=gpu", "--time=1",
          "--wrap=true"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    if not (SSH_TEST / "port").is_file():
        sys.exit("the test sshd is not up: bash tests/infra/ssh-up.sh (see the docstring)")
    from abcitrain.transport.ssh import SshTransport

    port = (SSH_TEST / "port").read_text().strip()
    common = (f"  Port {port}\n  User root\n  IdentityFile {SSH_TEST / 'id'}\n"
              f"  IdentitiesOnly yes\n  UserKnownHostsFile {SSH_TEST / 'known_hosts'}\n"
              "  BatchMode yes\n")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config"
        config.write_text(f"Host jump\n  HostName dsnode1\n{common}"
                          f"Host login\n  HostName dsnode2\n  ProxyJump jump\n{common}")
        os.environ.pop("SSH_AUTH_SOCK", None)
        ids: list[str] = []

        start = time.perf_counter()
        with SshTransport("login", config_file=config) as ssh:
            for _ in range(args.jobs):
                result = ssh.run(SUBMIT)
                ids.append(result.stdout.strip().split(";")[0])
            one_connection = time.perf_counter() - start
            separate_ids = []
            start = time.perf_counter()
            for _ in range(args.jobs):
                proc = subprocess.run(["ssh", "-F", str(config), "login", *SUBMIT],
                                      capture_output=True, text=True, check=True)
                separate_ids.append(proc.stdout.strip().split(";")[0])
            separate = time.perf_counter() - start
            every = ids + separate_ids
            ssh.run(["scancel", *every])
    assert len(ids) == len(separate_ids) == args.jobs, (len(ids), len(separate_ids))
    assert all(re.fullmatch(r"\d+", i) for i in every), "a submission returned no job id"
    assert len(set(every)) == 2 * args.jobs
    per_one = one_connection / args.jobs * 1000
    per_sep = separate / args.jobs * 1000
    print(f"{args.jobs} submissions through a jump host to real Slurm:")
    print(f"  one connection (abcitrain): {one_connection:6.2f} s ({per_one:.0f} ms each)")
    print(f"  ssh per submission:         {separate:6.2f} s ({per_sep:.0f} ms each)")
    print(f"  ratio: {separate / one_connection:.1f}x (goal: >= 10x)")


if __name__ == "__main__":
    main()
