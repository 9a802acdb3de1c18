"""The only layer that combines I/O with the pure parts: ``jobs`` (plan, submit, refresh,
cancel, logs of jobs), ``reservations`` (book, list, show, cancel, check a job against its
reservation) and ``common`` (the transport that reaches a cluster, the ledger, scheduler
refusals as errors). Called by the CLI; calls the domain packages, backends and transports.
Nothing below it imports it.
"""
