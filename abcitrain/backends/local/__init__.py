"""The local cluster: abcitrain's own one-machine scheduler (``abcitrain.localsched``),
driven through ``python -m abcitrain.localsched``. The template is templates/local.sh.j2.
"""

from .scheduler import OPTIONS, LocalBackend

__all__ = ["OPTIONS", "LocalBackend"]
