"""Durations on the command line: `90`, `90s`, `5m`, `2h`, `1d`."""

from __future__ import annotations

import re

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration.

    >>> [parse_duration(t) for t in ("90", "90s", "5m", "1.5h", "1d")]
    [90.0, 90.0, 300.0, 5400.0, 86400.0]
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    ValueError: not a duration: 'soon' (use e.g. 30s, 5m, 1h)
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m or float(m[1]) <= 0:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h)")
    return float(m[1]) * _UNITS[m[2]]
