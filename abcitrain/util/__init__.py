"""Small helpers every layer may use: durations, shell quoting, YAML loading, the state
folder, SQLite opening, validation building blocks and text tables. They import nothing from
abcitrain but ``errors`` (and each other); nothing here knows about jobs, clusters or points."""
