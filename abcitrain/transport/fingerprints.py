"""Host-key fingerprints as OpenSSH prints them, so a user can compare them with the ones a
site publishes (shared by the SSH transport's messages and ``hostkeys``)."""

from __future__ import annotations

from typing import Any


def fingerprint(key: Any) -> str:
    """A key's SHA256 fingerprint as OpenSSH prints it (SHA256:base64, no padding)."""
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
