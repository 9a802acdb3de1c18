"""The command line: one module per verb group, each loaded only when its verb runs.

``app`` holds the group and the exit-status policy; ``jobs`` (render, check, submit, status,
cancel, logs), ``points``, ``clusters``, ``reserve``, ``memory`` and ``train`` (plan, launch,
init) each parse options and call ``abcitrain.service`` or a domain package. This is the top
layer: nothing else in abcitrain imports it.
"""

from .app import cli, main

__all__ = ["cli", "main"]
