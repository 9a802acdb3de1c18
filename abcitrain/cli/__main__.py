"""``python -m abcitrain.cli``: the command line."""

from .app import main

main()
