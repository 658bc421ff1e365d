"""Event time: int nanoseconds since the epoch (UTC) ↔ RFC 3339 text, and conversions.

Inside `stream/` every event time, latency, TTL, window bound and watermark is an int
of nanoseconds: latencies are exact integer differences, and float seconds appear only
in outputs (`seconds`). RFC 3339 text is parsed to int ns without going through a
float; a fraction of up to 9 digits is exact, digits beyond the ninth are truncated
(below a nanosecond, as a tenth digit of a Seldon timestamp would be). `format_utc`
writes microseconds (the ns below them truncated), the text documents and summaries
have always carried.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

NS = 1_000_000_000  # nanoseconds a second

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# "YYYY-MM-DDT" (validated by the fast path below) -> epoch seconds of that day's start
_DAYS: dict[str, int] = {}


def _frac_ns(frac: str) -> int:
    """Nanoseconds of a fraction's digits: up to 9 exact, the rest truncated."""
    return int(frac[:9].ljust(9, "0")) if frac else 0


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 timestamp (Seldon logs nanoseconds) to int ns since the epoch, UTC.

    A timestamp without an offset is taken as UTC. Fraction digits beyond the ninth
    (below a nanosecond) are truncated.

    >>> parse_rfc3339("2020-11-06T09:35:09.171644169Z")
    1604655309171644169
    >>> parse_rfc3339("2020-11-06T10:35:09+01:00")
    1604655309000000000
    >>> parse_rfc3339("2020-11-06T09:35:09.1716441699Z")
    1604655309171644169
    >>> parse_rfc3339("yesterday")
    Traceback (most recent call last):
    ...
    ValueError: not an RFC 3339 timestamp: 'yesterday'
    """
    # Fastest path: the day "YYYY-MM-DDT" was seen before (a log's events share a
    # day), all ASCII digits; only the time of day and the fraction are left to read.
    if len(text) >= 20 and text[-1] in "Zz" and (text[19] == "." or len(text) == 20):
        day = _DAYS.get(text[:11])
        if day is not None:
            clock, frac = text[11:13] + text[14:16] + text[17:19], text[20:-1]
            if (clock.isascii() and clock.isdigit() and text[13] == ":"
                    and (not frac or (frac.isascii() and frac.isdigit()))):
                hh, mi, ss = int(text[11:13]), int(text[14:16]), int(text[17:19])
                if hh < 24 and mi < 60 and ss < 61:
                    return (day + hh * 3600 + mi * 60 + ss) * NS + _frac_ns(frac)
    # Fast path for the common logger form "YYYY-MM-DDTHH:MM:SS[.frac]Z": integer
    # calendar arithmetic instead of datetime (this runs once per logged event).
    if (len(text) >= 20 and text[-1] in "Zz" and text[4] == "-" and text[10] in "Tt"
            and (text[19] == "." or len(text) == 20)):
        frac = text[20:-1]
        head = text[:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
        if head.isdigit() and text[13] == ":" and (not frac or frac.isdigit()):
            y, mo, d = int(text[:4]), int(text[5:7]), int(text[8:10])
            hh, mi, ss = int(text[11:13]), int(text[14:16]), int(text[17:19])
            if 1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mi < 60 and ss < 61:
                day = _days_from_civil(y, mo, d) * 86400
                if text[:11].isascii():  # str.isdigit also accepts non-ASCII digits
                    if len(_DAYS) >= 65536:
                        _DAYS.clear()
                    _DAYS[text[:11]] = day
                return (day + hh * 3600 + mi * 60 + ss) * NS + _frac_ns(frac)
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    date, clock, frac, tz = m.groups()
    if not tz or tz.upper() == "Z":
        tz = "+00:00"
    elif ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    delta = datetime.fromisoformat(f"{date}T{clock}{tz}") - _EPOCH
    return (delta.days * 86400 + delta.seconds) * NS + _frac_ns(frac or "")


def seconds(ns: int) -> float:
    """Int ns → float seconds, for outputs only (correctly rounded: int / int in Python).

    >>> seconds(1604655309171644169), seconds(41_000)
    (1604655309.1716442, 4.1e-05)
    """
    return ns / NS


def seconds_to_ns(value: int | float | str | Decimal) -> int:
    """Seconds (a setting, an epoch-seconds label time) → int ns, rounded to the nearest
    ns: an int or a decimal text exactly, a float as the decimal it prints as (the text
    it was parsed from: `repr` is the shortest text that reads back as the same float).

    >>> seconds_to_ns(300.0), seconds_to_ns("1604655309.171644169"), seconds_to_ns(0.1)
    (300000000000, 1604655309171644169, 100000000)
    >>> seconds_to_ns(1604655309.171644)
    1604655309171644000
    """
    if type(value) is int:
        return value * NS
    if isinstance(value, float):
        value = repr(value)
    return int((Decimal(value) * NS).to_integral_value())


def ms_to_ns(ms: int | float) -> int:
    """A Kafka record timestamp (ms) → int ns: `ms * 1_000_000` (a float ms as the
    decimal it prints as, rounded to the nearest ns).

    >>> ms_to_ns(1604655309171), ms_to_ns(1604655309171.0), ms_to_ns(1604655309171.5)
    (1604655309171000000, 1604655309171000000, 1604655309171500000)
    """
    if type(ms) is int:
        return ms * 1_000_000
    if isinstance(ms, float) and ms.is_integer():
        return int(ms) * 1_000_000
    return int((Decimal(repr(ms) if isinstance(ms, float) else ms) * 1_000_000)
               .to_integral_value())


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).

    >>> _days_from_civil(1970, 1, 1), _days_from_civil(2000, 3, 1), _days_from_civil(2026, 11, 1)
    (0, 11017, 20758)
    """
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def format_utc(ns: int) -> str:
    """Format int ns since the epoch as ISO 8601 UTC with a `Z` suffix, to the
    microsecond (the nanoseconds below it truncated).

    >>> format_utc(1604655300 * NS)
    '2020-11-06T09:35:00Z'
    >>> format_utc(1604655309171644169)
    '2020-11-06T09:35:09.171644Z'
    """
    whole, sub = divmod(ns, NS)
    us = sub // 1000
    if 0 <= whole < _YEAR_10000:
        global _LAST_SECOND
        last_whole, text = _LAST_SECOND  # one tuple: safe to share between threads
        if whole != last_whole:
            # The day's "YYYY-MM-DDT" from datetime (cached), the time of day by
            # arithmetic: a UTC day is 86,400 s in epoch time (no leap seconds).
            day, second = divmod(whole, 86400)
            date = _DATES.get(day)
            if date is None:
                if len(_DATES) > 4096:
                    _DATES.clear()
                date = _DATES[day] = datetime.fromtimestamp(day * 86400, UTC).isoformat()[:11]
            hour, second = divmod(second, 3600)
            minute, second = divmod(second, 60)
            text = f"{date}{hour:02d}:{minute:02d}:{second:02d}"
            _LAST_SECOND = (whole, text)
        return f"{text}.{us:06d}Z" if us else f"{text}Z"
    return format_utc_datetime(ns)


_YEAR_10000 = 253402300800
_LAST_SECOND: tuple[int, str] = (-1, "")  # (whole epoch seconds, "YYYY-MM-DDTHH:MM:SS")
_DATES: dict[int, str] = {}  # epoch day -> "YYYY-MM-DDT"


def format_utc_datetime(ns: int) -> str:
    """`format_utc` through datetime (the definition, and the path before 1970).

    >>> format_utc_datetime(1604655309171644169)
    '2020-11-06T09:35:09.171644Z'
    """
    whole, sub = divmod(ns, NS)
    dt = datetime.fromtimestamp(whole, UTC).replace(microsecond=sub // 1000)
    text = dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
    return text.replace("+00:00", "Z")
