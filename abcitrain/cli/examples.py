"""One or two real examples for every command's --help (tests/test_cli_help.py checks that
every command has them and that each names a real command and real options)."""

from __future__ import annotations

import click

EXAMPLES: dict[str, tuple[str, ...]] = {
    "render": ("abcitrain render job.yaml -o job.sh",
               "abcitrain render job.yaml --cluster abci3 --nodes 4"),
    "check": ("abcitrain check job.yaml", "abcitrain check job.yaml --walltime 12:00:00 --json"),
    "submit": ("abcitrain submit job.yaml --dry-run",
               "abcitrain submit job.yaml --set train.lr=3e-4 --wait"),
    "status": ("abcitrain status", "abcitrain status 12345.pbs1 --tasks --json"),
    "cancel": ("abcitrain cancel 12345.pbs1",),
    "release": ("abcitrain release 12345.pbs1",),
    "logs": ("abcitrain logs 12345.pbs1 -f", "abcitrain logs 12345.pbs1 --task 3"),
    "plan": ("abcitrain plan jobs/sft.yaml", "abcitrain plan jobs/sft.yaml --all --dry-run"),
    "launch": ("abcitrain launch --nproc-per-node 8 -- python jobs/train.py run/train.json",),
    "init": ("abcitrain init team-project --cluster abci3",),
    "memory": ("abcitrain memory llama2-7b --gpus-per-node 8 --precision bf16",
               "abcitrain memory 6.7B --cluster abci3 --type rt_HF --zero 3"),
    "import": ("abcitrain import train.sh --to abci3 -o train.yaml",
               "abcitrain import old_abci2.sh --from abci2 --to abci3 --group gaa50000"),
    "move-aside": ("abcitrain move-aside ledger",),
    "clusters": ("abcitrain clusters", "abcitrain clusters show abci3"),
    "clusters show": ("abcitrain clusters show abci3",),
    "points": ("abcitrain points --group gaa50000", "abcitrain points --plot burn.png"),
    "points quote": ("abcitrain points quote job.yaml --on 2026-04-01",),
    "points import": ("sacct --parsable2 --format=JobID,User,Account,Partition,NNodes,Submit,"
                      "ElapsedRaw,State,AllocNodes,JobName > acct.txt",
                      "abcitrain points import acct.txt --format sacct --cluster slurm"),
    "points sync": ("abcitrain points sync --cluster abci3",),
    "reserve": ("abcitrain reserve plan --cluster abci3 --type rt_HF --nodes 8 --days 2 "
                "--start 2026-12-20",),
    "reserve plan": ("abcitrain reserve plan --cluster abci3 --type rt_HF --nodes 8 --days 2 "
                     "--start 2026-12-20",
                     "abcitrain reserve plan --cluster abci3 --type rt_HF --need-gpu-hours "
                     "2000"),
    "reserve create": ("abcitrain reserve create --cluster abci3 --type rt_HF --nodes 8 --days "
                       "2 --start 2026-12-20 --name hackathon --group gaa50000 --dry-run",),
    "reserve list": ("abcitrain reserve list --cluster abci3",),
    "reserve show": ("abcitrain reserve show R0123456789 --cluster abci3 --plot resv.png",),
    "reserve cancel": ("abcitrain reserve cancel R0123456789 --cluster abci3",),
    "board": ("abcitrain board --group gaa50000 --group gaa50001 --ends 2026-12-10T18:00+09:00",
              "abcitrain board hackathon.yaml --html board.html"),
    "ssh": ("abcitrain ssh check abci", "abcitrain ssh trust abci-as"),
    "ssh check": ("abcitrain ssh check abci",),
    "ssh trust": ("abcitrain ssh trust abci-as",),
    "container": ("abcitrain container render containers/torch.yaml",),
    "container render": ("abcitrain container render containers/torch.yaml -o torch.def",),
    "container lint": ("abcitrain container lint torch.def",),
    "container build": ("abcitrain container build containers/torch.yaml --cluster abci3 "
                        "--resource rt_HC --group gaa50000 --dry-run",),
}


def with_examples(command: click.Command, path: str) -> click.Command:
    """``command`` (and its subcommands) with its examples as the help's epilog; ``\\b``
    keeps click from rewrapping them."""
    examples = EXAMPLES.get(path)
    if examples and not command.epilog:
        command.epilog = "\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            with_examples(sub, f"{path} {name}")
    return command
