"""Turn tensor-shaped payload parts into rows: one list of values per input row."""

from __future__ import annotations

import math
from typing import Any

from stream.events import DecodeError


def flatten(values: Any) -> list[Any]:
    """Flatten nested lists row-major.

    >>> flatten([[1, 2], [3, 4]])
    [1, 2, 3, 4]
    >>> flatten(5)
    [5]
    """
    if not isinstance(values, list):
        return [values]
    out: list[Any] = []
    stack = [iter(values)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def reshape_rows(flat: list[Any], shape: list[int]) -> list[list[Any]]:
    """Split a flat row-major tensor of `shape` into rows (first dim = batch).

    >>> reshape_rows([1, 2, 3, 4, 5, 6], [2, 3])
    [[1, 2, 3], [4, 5, 6]]
    >>> reshape_rows([7, 8], [2])
    [[7], [8]]
    >>> reshape_rows([1, 2, 3], [2, 2])
    Traceback (most recent call last):
    ...
    stream.events.DecodeError: bad_shape: shape [2, 2] needs 4 values, got 3
    """
    if not isinstance(shape, list | tuple) or any(
        isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape
    ):
        raise DecodeError("bad_shape", f"invalid shape {shape!r}")
    if not shape:
        return [flat]
    expected = math.prod(shape)
    if expected != len(flat):
        raise DecodeError("bad_shape", f"shape {shape} needs {expected} values, got {len(flat)}")
    n = shape[0]
    if n == 0:
        return []
    width = expected // n
    return [flat[i * width : (i + 1) * width] for i in range(n)]


def as_rows(ndarray: Any, *, scalar_rows: bool) -> list[list[Any]]:
    """Rows of a Seldon `ndarray` / TF `instances` value.

    A 2-D array is rows already. A 1-D array is one row of features
    (`scalar_rows=False`, a request) or one scalar prediction per row
    (`scalar_rows=True`, a response).

    >>> as_rows([[1, 2], [3, 4]], scalar_rows=False)
    [[1, 2], [3, 4]]
    >>> as_rows([1.0, 2.0, 5.0], scalar_rows=False)
    [[1.0, 2.0, 5.0]]
    >>> as_rows([0, 2, 1], scalar_rows=True)
    [[0], [2], [1]]
    """
    if not isinstance(ndarray, list):
        raise DecodeError("bad_shape", f"expected an array, got {type(ndarray).__name__}")
    if not ndarray:
        return []
    if type(ndarray[0]) is list:
        rows = []
        for r in ndarray:
            if type(r) is not list:
                raise DecodeError("bad_shape", "ragged array: rows mix scalars and lists")
            if list in map(type, r):  # deeper than 2-D: flatten each row
                if not all(type(v) is list for v in r):
                    raise DecodeError("bad_shape", "ragged array: a row mixes scalars and lists")
                r = flatten(r)
            rows.append(r)
        return rows
    if any(isinstance(r, list) for r in ndarray):
        raise DecodeError("bad_shape", "ragged array: rows mix scalars and lists")
    if scalar_rows:
        return [[v] for v in ndarray]
    return [list(ndarray)]


def join_tensors(tensors: list[tuple[str, list[list[Any]]]]) -> tuple[tuple[str, ...] | None, list]:
    """Join per-tensor rows side by side into feature rows, with column names.

    Each input tensor gives one column per value of its rows (`<name>_<i>` when it
    has several). A single multi-column tensor has no names of its own: None.

    >>> join_tensors([("a", [[1], [2]]), ("b", [[3, 4], [5, 6]])])
    (('a', 'b_0', 'b_1'), [[1, 3, 4], [2, 5, 6]])
    >>> join_tensors([("x", [[1, 2]])])
    (None, [[1, 2]])
    """
    if not tensors:
        return None, []
    n = len(tensors[0][1])
    if any(len(rows) != n for _, rows in tensors):
        raise DecodeError("bad_shape", "tensors disagree on the batch size")
    names: list[str] = []
    for name, rows in tensors:
        width = len(rows[0]) if rows else 1
        names.extend([name] if width == 1 else [f"{name}_{j}" for j in range(width)])
    rows = [[v for _, t in tensors for v in t[r]] for r in range(n)]
    named = len(tensors) > 1 or (bool(rows) and len(rows[0]) == 1)
    return (tuple(names) if named else None), rows
