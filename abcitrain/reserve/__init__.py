"""Advance reservations, pure: the dated rules of each cluster (``rules``), the planner
that prices and fits a request (``planner``), each scheduler's reservation commands and
parsers (``base``, ``pbs``, ``uge``, ``slurm``), a job against its reservation (``jobfit``)
and the timeline plot (``gantt``). Booking, listing and cancelling with I/O live in
``abcitrain.service.reservations``.

May import: ``model``, ``errors``, ``util``, ``backends``, ``points`` (prices) and
``batch.store`` (job records).
"""
