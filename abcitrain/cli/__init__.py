"""The command line: one module per verb group, each loaded only when its verb runs.

``app`` holds the group and the exit-status policy; ``submitting`` (render, check, submit),
``following`` (status, cancel, release, logs), ``points``, ``clusters``, ``reserve``,
``memory``, ``train`` (plan, launch, init), ``importer``, ``container``, ``ssh``,
``state`` and ``board`` each parse options and call ``abcitrain.service`` or a domain
package. This is the top layer: nothing else in abcitrain imports it.

May import: ``domain``, ``errors``, ``util``, ``service``, ``batch``, ``points``, ``reserve``,
``train``, ``launch``, ``memory``, ``profiles``, ``scaffold``, ``container``, ``backends``,
``board``.
"""

from .app import cli, main

__all__ = ["cli", "main"]
