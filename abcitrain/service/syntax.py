"""A ``script:`` body read by ``bash -n`` before anything is submitted: a syntax error is
found at `check` and `render` time, at its line of the body, not when the job starts."""

from __future__ import annotations

import re
import shutil

from ..batch.render import JobPlan
from ..errors import Problem

# bash -n's own words: "bash: line 3: syntax error near unexpected token `fi'" (stdin)
_LINE = re.compile(r"^(?:bash|/\S*bash): (?:-: )?line (\d+): (.*)$")


def body_problems(script: str) -> list[Problem]:
    """What ``bash -n`` says of ``script``, each problem at its line of the body; [] when
    bash reads it (or bash is not installed here to ask)."""
    bash = shutil.which("bash")
    if bash is None:
        return []
    # imported here: rendering a command: job (no body) never runs it
    import subprocess

    done = subprocess.run([bash, "-n"], input=script, text=True, capture_output=True,
                          timeout=30, check=False)
    if done.returncode == 0:
        return []
    said: dict[str, list[str]] = {}          # bash says a line's error, then the line itself
    for line in done.stderr.splitlines():
        m = _LINE.match(line.strip())
        if m:
            said.setdefault(f"script (line {m[1]})", []).append(m[2])
        elif line.strip():
            said.setdefault("script", []).append(line.strip())
    found = [Problem(where, "; ".join(texts)) for where, texts in said.items()]
    return found or [Problem("script", "bash cannot read it (bash -n failed)")]


def with_body_checked(plan: JobPlan) -> JobPlan:
    """``plan`` with its body's syntax problems added (a plan without ``script:`` as is)."""
    if plan.spec.script is None:
        return plan
    found = body_problems(plan.spec.script)
    if not found:
        return plan
    from dataclasses import replace

    return replace(plan, problems=(*found, *plan.problems))
