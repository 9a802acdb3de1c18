"""The Python API: what the CLI does, from code.

``abcitrain.api.submission`` builds, checks, prices, submits and follows job specs and chains;
``abcitrain.api.executor`` submits Python functions (submitit's executor API) to any
abcitrain cluster; ``runner`` runs a function inside its job. All go through the same service
layer as the CLI: the same checks, points estimate, budget guard, ledger, job store and
transports. ``jobs`` is the deprecated old name of ``submission``.

May import: ``domain``, ``errors``, ``util``, ``service``, ``batch``, ``profiles``,
``points``, ``backends`` (whose job a function runs in, and how it requeues).
"""
