"""Open Inference Protocol protobuf tensors → Python rows.

Tensor data is either in `contents` (typed repeated fields) or, when the server
used them, in `raw_*_contents` (one little-endian byte string per tensor, BYTES
elements prefixed by a 4-byte little-endian length).
"""

from __future__ import annotations

import math
import struct
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
