"""The only layer that combines I/O with the pure parts: ``jobs`` (plan, submit, refresh,
cancel, logs of jobs), ``reservations`` (book, list, show, cancel, check a job against its
reservation), ``common`` (the transport that reaches a cluster, as its profile's ``login``
says, the ledger, scheduler refusals as errors) and ``remote`` (SSH host keys). Called by
the CLI; calls the domain packages, profiles, backends and transports.
Nothing below it imports it.
"""
