"""Small helpers every layer may use: durations, shell quoting, YAML loading, the state
folder, SQLite opening, validation building blocks and text tables. Nothing here knows about
jobs, clusters or points.

May import: ``errors``.
"""
