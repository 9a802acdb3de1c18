"""Points (ABCI's credits): dated tariffs and pricing (``tariffs``), the SQLite ledger
(``ledger``), budgets and the guard that refuses an overrun (``budget``), accounting import
(``accounting``), ABCI's ``show_point`` (``showpoint``), the report (``report``) and its plot
(``plot``, matplotlib loaded only there).

May import: ``domain``, ``errors``, ``util``, ``backends`` (accounting parsers).
"""
