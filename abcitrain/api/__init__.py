"""The Python API: what the CLI does, from code.

``abcitrain.api.submission`` builds, checks, prices, submits and follows job specs and chains;
``abcitrain.api.executor`` submits Python functions (submitit's executor API) to any
abcitrain cluster. Both go through the same service layer as the CLI: the same checks,
points estimate, budget guard, ledger, job store and transports.
"""
