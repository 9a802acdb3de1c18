"""``python -m abcitrain.localsched``: the local scheduler's command line (``commands``)."""

from .commands import main

raise SystemExit(main())
