"""``abcitrain init``: a team's project folder, ready to plan and submit.

May import: ``model``, ``errors``, ``util``, ``batch`` (rendering) and ``train``.
"""
