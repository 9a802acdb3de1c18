"""The job side: a job spec (``spec``), its checks against the cluster's limits
(``checks``), the directives a user adds or drops (``directives``), the rendered script and
submit command (``render``), and the store of submitted jobs (``store``, SQLite).

May import: ``model``, ``errors``, ``util``, ``profiles``, ``train.config`` (a spec's
``train:`` section) and ``backends`` (rendering asks the scheduler's spelling). Everything but
``store`` is pure: no commands run, nothing written.
"""
