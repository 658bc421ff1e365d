"""JSON parsing for payloads, with dead-letter reasons.

orjson refuses NaN and infinity (they are not JSON), so a parsed body never holds a
non-finite number; such a body gets its own reason, `non_finite_value`.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.events import DecodeError


def loads(raw: bytes | str) -> Any:
    """Parse JSON or raise `DecodeError`.

    >>> loads(b'{"a": [1.5]}')
    {'a': [1.5]}
    >>> loads(b'[1e999]')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stream.events.DecodeError: non_finite_value: number is infinity when parsed as double: ...
    >>> loads(b'[NaN]').__class__
    Traceback (most recent call last):
    ...
    stream.events.DecodeError: non_finite_value: NaN is not valid JSON
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if "infinity" in msg:
            raise DecodeError("non_finite_value", msg) from None
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        if "NaN" in text or "Infinity" in text:
            raise DecodeError("non_finite_value", "NaN is not valid JSON") from None
        raise DecodeError("invalid_json", msg) from None
