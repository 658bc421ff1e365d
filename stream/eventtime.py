"""Event-time parsing and formatting (RFC 3339 with up to nanoseconds ↔ epoch seconds)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


# "YYYY-MM-DDT" (validated by the fast path below) -> epoch seconds of that day's start
_DAYS: dict[str, int] = {}


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
                    micros = int(frac[:6].ljust(6, "0")) if frac else 0
                    seconds = day + hh * 3600 + mi * 60 + ss
                    return (seconds * 10**6 + micros) / 10**6
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
                seconds = day + hh * 3600 + mi * 60 + ss
                micros = int(frac[:6].ljust(6, "0")) if frac else 0
                return (seconds * 10**6 + micros) / 10**6  # as timedelta.total_seconds()
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    date, clock, frac, tz = m.groups()
    digits = (frac or "").ljust(6, "0")[:6]
    if not tz or tz.upper() == "Z":
        tz = "+00:00"
    elif ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    dt = datetime.fromisoformat(f"{date}T{clock}.{digits}{tz}")
    return dt.timestamp()


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


def format_utc(epoch: float) -> str:
    """Format epoch seconds as ISO 8601 UTC with a `Z` suffix.

    >>> format_utc(1604655300.0)
    '2020-11-06T09:35:00Z'
    >>> format_utc(1604655309.171644)
    '2020-11-06T09:35:09.171644Z'
    """
    if type(epoch) is float and 0.0 <= epoch < _YEAR_10000:
        # What datetime.fromtimestamp does (CPython's _PyTime_DoubleToDenominator:
        # split off the whole seconds, round the microseconds half to even, carry),
        # with the text of the last whole second kept: a request and its response
        # usually share it. `format_utc_datetime` is the definition.
        frac, whole = math.modf(epoch)
        us = round(frac * 1e6)
        if us >= 1_000_000:
            us -= 1_000_000
            whole += 1.0
        global _LAST_SECOND
        last_whole, text = _LAST_SECOND  # one tuple: safe to share between threads
        if whole != last_whole:
            # The day's "YYYY-MM-DDT" from datetime (cached), the time of day by
            # arithmetic: a UTC day is 86,400 s in epoch time (no leap seconds).
            day, second = divmod(int(whole), 86400)
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
    return format_utc_datetime(epoch)


_YEAR_10000 = 253402300800.0
_LAST_SECOND: tuple[float, str] = (-1.0, "")  # (whole epoch seconds, "YYYY-MM-DDTHH:MM:SS")
_DATES: dict[int, str] = {}  # epoch day -> "YYYY-MM-DDT"


def format_utc_datetime(epoch: float) -> str:
    """`format_utc` through datetime (the definition, and the path for ints and
    timestamps before 1970).

    >>> format_utc_datetime(1604655309.171644)
    '2020-11-06T09:35:09.171644Z'
    """
    dt = datetime.fromtimestamp(epoch, UTC)
    text = dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
    return text.replace("+00:00", "Z")
