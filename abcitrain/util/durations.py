"""Walltime parsing and formatting.

A walltime is held as whole seconds. Users write ``HH:MM:SS``, ``H:MM`` (hours and minutes,
as schedulers read two fields), ``D:HH:MM:SS`` (Grid Engine's, as ABCI 2.0 scripts write
``h_rt=1:00:00:00``), Slurm's ``D-HH:MM:SS``, ``2d4h30m``-style units, or a plain integer of
seconds.
"""

from __future__ import annotations

import re

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_UNIT_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_CLOCK_RE = re.compile(r"^(?:(\d+)-)?(\d+):(\d{1,2})(?::(\d{1,2}))?$")
# Grid Engine's (and ABCI 2.0 scripts') D:HH:MM:SS: h_rt=1:00:00:00 is one day
_DAY_CLOCK_RE = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}):(\d{1,2})$")


def parse_duration(value: object) -> int:
    """Return ``value`` as whole seconds; raise ValueError with the accepted forms otherwise."""
    if isinstance(value, bool):
        raise ValueError(_hint(value))
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{value!r} must be positive")
        return value
    if not isinstance(value, str):
        raise ValueError(_hint(value))
    text = value.strip()
    if text.isdigit():
        return parse_duration(int(text))
    day_clock = _DAY_CLOCK_RE.match(text)
    if day_clock:
        d, h, m, sec = (int(g) for g in day_clock.groups())
        if h >= 24 or m >= 60 or sec >= 60:
            raise ValueError(f"{value!r}: D:HH:MM:SS needs hours below 24, minutes and "
                             "seconds below 60")
        return parse_duration(d * 86400 + h * 3600 + m * 60 + sec)
    clock = _CLOCK_RE.match(text)
    if clock:
        days, hours, minutes, seconds = clock.groups()
        if int(minutes) >= 60 or (seconds is not None and int(seconds) >= 60):
            raise ValueError(f"{value!r}: minutes and seconds must be below 60")
        total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60
        total += int(seconds or 0)
        if total <= 0:
            raise ValueError(f"{value!r} must be positive")
        return total
    units = _UNIT_RE.match(text)
    if text and units and any(units.groups()):
        total = sum(int(n) * _UNITS[u] for n, u in zip(units.groups(), "dhms", strict=True) if n)
        if total <= 0:
            raise ValueError(f"{value!r} must be positive")
        return total
    raise ValueError(_hint(value))


def _hint(value: object) -> str:
    return (f"{value!r} is not a duration; write HH:MM:SS, H:MM, D:HH:MM:SS, 1d2h30m or a "
            "number of seconds")


def format_hms(seconds: int) -> str:
    """Format as ``HH:MM:SS`` with hours unbounded (PBS and Grid Engine read this form)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def format_slurm(seconds: int) -> str:
    """Format for Slurm's ``--time``: ``D-HH:MM:SS`` past a day, ``HH:MM:SS`` below."""
    days, rest = divmod(seconds, 86400)
    hms = format_hms(rest)
    return f"{days}-{hms}" if days else hms
