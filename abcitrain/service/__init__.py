"""The only layer that combines I/O with the pure parts: ``submitting`` (a job's script
written, guarded, submitted, charged, recorded), ``once`` (exactly one job per submission
however the connection behaves), ``following`` (refresh, cancel,
release, logs of submitted jobs), ``plans`` (load and check a plan, no I/O beyond reading;
``syntax``: ``bash -n`` of a ``script:`` body), ``identity`` (whose submit program is on
PATH), ``poll`` (the shared poller), ``chains``, ``reservations`` (book, list, show, cancel,
check a job against its reservation), ``containers``, ``common`` (the transport that reaches
a cluster, as its profile's ``login`` says, the ledger, scheduler refusals as errors) and
``remote`` (SSH host keys). Called by the CLI and the Python API; nothing below it imports it.

May import: ``domain``, ``errors``, ``util``, ``batch``, ``points``, ``reserve``, ``train``,
``backends``, ``transport``, ``profiles``, ``container``.
"""
