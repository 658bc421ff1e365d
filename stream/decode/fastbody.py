"""The fast path for the body almost every Seldon v1 event carries.

A SeldonMessage `{"data": {"names": [...], "ndarray": [[...], ...]}, "meta": {...}}`
with a 1-D or 2-D `ndarray`, or a `tensor` `{"shape": [n, w], "values": [...]}`, is
read here without the generic walk of `stream.decode.bodies.parse_body`. Anything
else (strData, a status, a deeper or ragged array, an odd shape, an unexpected type)
returns None and the caller uses `parse_body`, which stays the definition of what a
body means: for every input on which `seldon_message_body` returns a `Body`, it
equals `parse_body`'s (tests/unit/test_decode_fastpaths.py checks this on fixtures,
the bundled sample and generated bodies).

The bodies come from `orjson.loads`, so containers are exact `list`/`dict` and
numbers are finite (orjson refuses NaN and infinity).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stream.decode.bodies import Body

_MESSAGE_KEYS = frozenset({"data", "meta"})
_DATA_KEYS = frozenset({"names", "ndarray", "tensor"})


def seldon_message_body(obj: Any, response: bool) -> Body | None:
    """The `Body` of a plain SeldonMessage ndarray or tensor, or None for anything else.

    >>> b = seldon_message_body({"data": {"names": ["a", "b"], "ndarray": [[1, 2.5]]}}, False)
    >>> (b.names, b.rows, b.protocol)
    (('a', 'b'), [[1, 2.5]], 'seldon')
    >>> seldon_message_body({"data": {"ndarray": [0.2, 0.8]}}, True).rows
    [[0.2], [0.8]]
    >>> seldon_message_body({"data": {"tensor": {"shape": [2, 1], "values": [3, 4]}}}, False).rows
    [[3], [4]]
    >>> seldon_message_body({"strData": "hi"}, False) is None
    True
    """
    if type(obj) is not dict or not obj.keys() <= _MESSAGE_KEYS:
        return None
    data = obj.get("data")
    if type(data) is not dict or not data.keys() <= _DATA_KEYS:
        return None
    ndarray = data.get("ndarray")
    if type(ndarray) is not list:
        if "ndarray" in data:
            return None
        rows = _tensor_rows(data.get("tensor"), response)
        if rows is None:
            return None
    elif not ndarray:
        rows = []
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


def _tensor_rows(tensor: Any, response: bool) -> list[list[Any]] | None:
    """Rows of `data.tensor` with a flat `values` list and a 1-D or 2-D shape, or None."""
    if type(tensor) is not dict:
        return None
    shape, values = tensor.get("shape"), tensor.get("values")
    if type(shape) is not list or type(values) is not list or not _flat(values):
        return None
    if len(shape) == 2:
        n, width = shape
    elif len(shape) == 1:  # a response's scalars are one per row; a request's one row
        n, width = (shape[0], 1) if response else (1, shape[0])
    else:
        return None
    if type(n) is not int or type(width) is not int or n <= 0 or width <= 0 or (
            n * width != len(values)):
        return None
    if n == 1:
        return [values]
    return [values[i : i + width] for i in range(0, n * width, width)]
