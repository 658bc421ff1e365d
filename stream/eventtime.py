"""Event-time parsing and formatting (RFC 3339 with up to nanoseconds ↔ epoch seconds)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def parse_rfc3339(text: str) -> float:
    """Parse an RFC 3339 timestamp (Seldon logs nanoseconds) to epoch seconds, UTC.

    A timestamp without an offset is taken as UTC.

    >>> parse_rfc3339("2020-11-06T09:35:09.171644169Z")
    1604655309.171644
    >>> parse_rfc3339("2020-11-06T10:35:09+01:00")
    1604655309.0
    >>> parse_rfc3339("yesterday")
    Traceback (most recent call last):
    ...
    ValueError: not an RFC 3339 timestamp: 'yesterday'
    """
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    date, clock, frac, tz = m.groups()
    micros = (frac or "").ljust(6, "0")[:6]
    if not tz or tz.upper() == "Z":
        tz = "+00:00"
    elif ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    dt = datetime.fromisoformat(f"{date}T{clock}.{micros}{tz}")
    return dt.timestamp()


def format_utc(epoch: float) -> str:
    """Format epoch seconds as ISO 8601 UTC with a `Z` suffix.

    >>> format_utc(1604655300.0)
    '2020-11-06T09:35:00Z'
    >>> format_utc(1604655309.171644)
    '2020-11-06T09:35:09.171644Z'
    """
    dt = datetime.fromtimestamp(epoch, UTC)
    text = dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
    return text.replace("+00:00", "Z")
