"""The organizer's board (``abcitrain board``): every team's points, jobs and reservations in
one read-only web page. ``config`` reads what to show, ``snapshot`` gathers the numbers (one
scheduler query per cluster per refresh, through the services ``points`` and ``status`` use),
``charts`` and ``page`` draw them, ``server`` serves them (uvicorn and matplotlib are loaded
only here, for the ``board`` verb).

May import: ``errors``, ``util``, ``backends``, ``batch``, ``points``, ``reserve``,
``profiles``, ``service``.
"""
