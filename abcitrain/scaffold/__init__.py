"""``abcitrain init``: a team's project folder, ready to plan and submit."""
