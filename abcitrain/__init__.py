"""abcitrain: describe a training job once, run it on PBS Pro, Grid Engine, Slurm or locally.

The packages are layered so that the CLI stays light and I/O stays in one place:
``cli`` parses and calls ``service``; ``service`` is the only layer that combines I/O
(transports, the job store, the ledger) with the domain packages (``batch``, ``points``,
``reserve``, ``train``, ``launch``, ``memory``, ``profiles``, ``scaffold``, ``localsched``);
those call ``backends`` and ``transport``; everyone may use ``domain``, ``errors`` and
``util``. ``tests/test_layout.py`` checks the layering.
"""

__version__ = "0.1.0"
