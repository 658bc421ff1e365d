"""Open Inference Protocol protobuf tensors → Python rows.

Tensor data is either in `contents` (typed repeated fields) or, when the server
used them, in `raw_*_contents` (one little-endian byte string per tensor, BYTES
elements prefixed by a 4-byte little-endian length).
"""

from __future__ import annotations

import math
import struct
import sys
from typing import Any

import numpy as np

from stream.decode.tensors import join_tensors, reshape_rows
from stream.events import DecodeError

RAW_DTYPES = {
    "BOOL": "<?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}
CONTENT_FIELDS = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP16": "fp32_contents", "FP32": "fp32_contents", "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def split_bytes_elements(raw: bytes) -> list[bytes]:
    """Split a raw BYTES tensor into its length-prefixed elements.

    >>> split_bytes_elements(struct.pack("<I", 2) + b"hi" + struct.pack("<I", 0))
    [b'hi', b'']
    """
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise DecodeError("bad_raw_contents", "truncated BYTES length prefix")
        (n,) = struct.unpack_from("<I", raw, i)
        i += 4
        if i + n > len(raw):
            raise DecodeError("bad_raw_contents", "BYTES element runs past the buffer")
        out.append(raw[i : i + n])
        i += n
    return out


def _text(v: bytes) -> Any:
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        return v.hex()


def raw_values(raw: bytes, datatype: str) -> list[Any]:
    """Values of a raw little-endian tensor buffer.

    >>> raw_values(np.array([1.5, 2.5], dtype="<f4").tobytes(), "FP32")
    [1.5, 2.5]
    """
    if datatype == "BYTES":
        return [_text(v) for v in split_bytes_elements(raw)]
    dtype = RAW_DTYPES.get(datatype)
    if dtype is None:
        raise DecodeError("bad_datatype", f"unknown tensor datatype {datatype!r}")
    if len(raw) % np.dtype(dtype).itemsize:
        raise DecodeError("bad_raw_contents", f"{len(raw)} bytes is not a whole {datatype} array")
    arr = np.frombuffer(raw, dtype=dtype)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DecodeError("non_finite_value", f"NaN or infinity in a {datatype} tensor")
    return arr.tolist()


def content_values(contents: Any, datatype: str) -> list[Any]:
    field = CONTENT_FIELDS.get(datatype)
    if field is None:
        raise DecodeError("bad_datatype", f"unknown tensor datatype {datatype!r}")
    values = list(getattr(contents, field))
    if datatype == "BYTES":
        return [_text(v) for v in values]
    if field in ("fp32_contents", "fp64_contents") and not all(map(math.isfinite, values)):
        raise DecodeError("non_finite_value", f"NaN or infinity in a {datatype} tensor")
    return values


def tensors_to_rows(
    tensors: Any, raw_contents: Any
) -> tuple[tuple[str, ...] | None, list[list[Any]]]:
    """Rows and column names from OIP tensors; columns of one tensor are `<name>_<i>`."""
    if raw_contents and len(raw_contents) != len(tensors):
        raise DecodeError("bad_raw_contents", "raw contents do not match the tensors one to one")
    named: list[tuple[str, list[list[Any]]]] = []
    for i, t in enumerate(tensors):
        values = (raw_values(raw_contents[i], t.datatype) if raw_contents
                  else content_values(t.contents, t.datatype))
        named.append((t.name, reshape_rows(values, list(t.shape) or [len(values)])))
    return join_tensors(named)


def _memoryview_formats() -> dict[str, Any]:  # formats of `memoryview.cast` (literals)
    """Datatypes `memoryview.cast(...).tolist()` reads exactly as numpy does: native
    formats of the right size, on a little-endian host only (the wire is little-endian)."""
    if sys.byteorder != "little":
        return {}
    wanted = {"UINT8": ("B", 1), "UINT16": ("H", 2), "UINT32": ("I", 4), "UINT64": ("Q", 8),
              "INT8": ("b", 1), "INT16": ("h", 2), "INT32": ("i", 4), "INT64": ("q", 8),
              "FP32": ("f", 4), "FP64": ("d", 8)}
    return {dt: fmt for dt, (fmt, size) in wanted.items() if struct.calcsize(fmt) == size}


_FORMATS = _memoryview_formats()


def raw_tensor_rows(
    tensors: Any, raw_contents: Any
) -> tuple[tuple[str, ...] | None, list[list[Any]]] | None:
    """`tensors_to_rows` for the common message: one numeric tensor of shape [n, w] or
    [n] in raw contents. None for anything else, and whenever the general path would
    have to decide (odd shape or length, NaN/infinity): the caller then uses
    `tensors_to_rows`, which gives the same result for every message this accepts
    (tests/unit/test_decode_fastpaths.py).

    >>> from stream.decode.oip.inference_pb2 import ModelInferResponse
    >>> m = ModelInferResponse()
    >>> m.outputs.add(name="proba", datatype="FP64", shape=[2, 1]) and None
    >>> m.raw_output_contents.append(np.array([0.25, 0.75]).tobytes())
    >>> raw_tensor_rows(m.outputs, m.raw_output_contents)
    (('proba',), [[0.25], [0.75]])
    """
    if len(tensors) != 1 or len(raw_contents) != 1:
        return None
    t = tensors[0]
    fmt = _FORMATS.get(t.datatype)
    if fmt is None:
        return None
    raw = raw_contents[0]
    try:
        values = memoryview(raw).cast(fmt).tolist()  # TypeError: not a whole array
    except TypeError:
        return None
    if fmt in "fd" and not math.isfinite(sum(values)):  # finite sum: all finite
        return None
    shape = t.shape[:]
    if len(shape) == 2:
        n, width = shape
    elif len(shape) == 1:
        n, width = shape[0], 1
    elif not shape:
        n, width = len(values), 1
    else:
        return None
    if n <= 0 or width <= 0 or n * width != len(values):
        return None
    if width == 1:
        return (t.name,), [[v] for v in values]
    if n == 1:
        return None, [values]
    return None, [values[i : i + width] for i in range(0, n * width, width)]
