"""``abcitrain init``: a team's project folder, ready to plan and submit.

May import: ``domain``, ``errors``, ``util``, ``batch`` (rendering), ``train``,
``container``, ``backends`` (whether jobs run on this machine).
"""
