"""The fast path for the body almost every Seldon v1 event carries.

A SeldonMessage `{"data": {"names": [...], "ndarray": [[...], ...]}, "meta": {...}}`
with a 1-D or 2-D `ndarray` is read here without the generic walk of
`stream.decode.bodies.parse_body`. Anything else (tensors, strData, a status, a
deeper or ragged array, an unexpected type) returns None and the caller uses
`parse_body`, which stays the definition of what a body means: for every input on
which `seldon_ndarray_body` returns a `Body`, it equals `parse_body`'s
(tests/unit/test_decode_fastpaths.py checks this on fixtures and generated bodies).

The bodies come from `orjson.loads`, so containers are exact `list`/`dict` and
numbers are finite (orjson refuses NaN and infinity).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stream.decode.bodies import Body

_MESSAGE_KEYS = frozenset({"data", "meta"})
_DATA_KEYS = frozenset({"names", "ndarray"})


def seldon_ndarray_body(obj: Any, response: bool) -> Body | None:
    """The `Body` of a plain SeldonMessage ndarray, or None when it is anything else.

    >>> b = seldon_ndarray_body({"data": {"names": ["a", "b"], "ndarray": [[1, 2.5]]}}, False)
    >>> (b.names, b.rows, b.protocol)
    (('a', 'b'), [[1, 2.5]], 'seldon')
    >>> seldon_ndarray_body({"data": {"ndarray": [0.2, 0.8]}}, True).rows
    [[0.2], [0.8]]
    >>> seldon_ndarray_body({"strData": "hi"}, False) is None
    True
    """
    if type(obj) is not dict or not obj.keys() <= _MESSAGE_KEYS:
        return None
    data = obj.get("data")
    if type(data) is not dict or not data.keys() <= _DATA_KEYS:
        return None
    ndarray = data.get("ndarray")
    if type(ndarray) is not list:
        return None
    if not ndarray:
        rows: list[list[Any]] = []
    elif type(ndarray[0]) is list:
        for r in ndarray:  # 2-D: rows of scalars, else the generic path decides
            if type(r) is not list or not _flat(r):
                return None
        rows = ndarray[:]
    elif not _flat(ndarray):
        return None
    elif response:
        rows = [[v] for v in ndarray]
    else:
        rows = [ndarray]
    names = data.get("names")
    if names is not None:
        if type(names) is not list:
            return None
        names = tuple(names) if _all_str(names) else tuple(map(str, names))
    request_path: dict[str, str] = {}
    request_id = ""
    meta = obj.get("meta")
    if meta:
        if type(meta) is not dict:
            return None
        paths = meta.get("requestPath")
        if paths:
            if type(paths) is not dict:
                return None
            # orjson's keys are str; so are the values, as a rule (then str(v) is v)
            request_path = paths if _all_str(paths.values()) else {
                k: str(v) for k, v in paths.items()}
        puid = meta.get("puid")
        if puid:
            request_id = str(puid)
    return Body(names, rows, "seldon", "", "", request_path, request_id, None, None)


def _flat(values: list[Any]) -> bool:
    """No element is a list. `sum` is the quick proof for a row of numbers (it raises
    on anything but numbers); other rows are checked element by element."""
    try:
        sum(values)
        return True
    except (TypeError, OverflowError):
        return list not in map(type, values)


def _all_str(values: Iterable[Any]) -> bool:
    """Every element is a str (then `map(str, ...)` would change nothing)."""
    try:
        "".join(values)
        return True
    except TypeError:
        return False
