"""Advance reservations, pure: the dated rules of each cluster (``rules``), the planner
that prices and fits a request (``planner``), a job against its reservation (``jobfit``) and
the timeline plot (``gantt``). Each scheduler's reservation commands and their answers live
in its backend (``backends/<name>/reservations.py``); booking, listing and cancelling with
I/O in ``abcitrain.service.reservations``.

May import: ``domain``, ``errors``, ``util``, ``backends``, ``points`` (prices),
``batch.store`` (job records).
"""
