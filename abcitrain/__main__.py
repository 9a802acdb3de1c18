"""``python -m abcitrain``: the command line, for jobs that must name their interpreter."""

from .cli.app import main

main()
