"""The job side: a job spec (``spec``), its checks against the cluster's limits
(``checks``), the directives a user adds or drops (``directives``, ``owned``), the rendered
script and submit command (``render``), import of existing scripts (``importer``), and the
store of submitted jobs (``store``, SQLite). Everything but ``store`` is pure: no commands
run, nothing written.

May import: ``domain``, ``errors``, ``util``, ``profiles``, ``train.config`` (a spec's
``train:`` section), ``backends`` (rendering asks the scheduler's spelling).
"""
