"""Small helpers every layer may use: durations, shell quoting, YAML loading, the state
folder, SQLite opening, validation building blocks, text tables and counts in words
(``words``: "1 node", "2 nodes"). Nothing here knows about
jobs, clusters or points.

May import: ``errors``.
"""
