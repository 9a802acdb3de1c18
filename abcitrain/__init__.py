"""abcitrain: describe a training job once, run it on PBS Pro, Grid Engine, Slurm or locally.

The package is layered so that the CLI stays light: ``cli`` parses and calls ``service``;
``service`` is the only module that combines I/O (transport, job store) with the pure parts
(``spec``, ``profiles``, ``checks``, ``render``, ``backends``).
"""

__version__ = "0.1.0"
