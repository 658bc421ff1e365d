"""Prediction payload bodies: SeldonMessage, TensorFlow `instances`/`predictions`, OIP JSON.

`parse_body` reads a decoded JSON body and returns its rows, names, version hints
and error, whatever the protocol. It raises `DecodeError` for shapes it cannot read.
"""

from __future__ import annotations

from typing import Any

import msgspec

from stream.decode.tensors import as_rows, flatten, join_tensors, reshape_rows
from stream.events import DecodeError


class Body(msgspec.Struct, gc=False):
    """What a body says, whatever its protocol.

    A Struct, built in C once per event; short-lived and never in a reference cycle
    (it holds parsed JSON and strings), so not tracked by the garbage collector.
    """

    names: tuple[str, ...] | None = None
    rows: list[list[Any]] = msgspec.field(default_factory=list)
    protocol: str = ""
    model_name: str = ""  # OIP model_name
    version: str = ""  # OIP model_version
    request_path: dict[str, str] = msgspec.field(default_factory=dict)  # Seldon meta.requestPath
    request_id: str = ""  # OIP id or Seldon meta.puid
    error: str | None = None
    error_type: str | None = None


def _rows_from_dict_instances(instances: list[dict[str, Any]]) -> tuple[tuple[str, ...], list]:
    names = tuple(instances[0].keys())
    rows = []
    for inst in instances:
        if not isinstance(inst, dict) or tuple(inst.keys()) != names:
            raise DecodeError("bad_shape", "instances do not share one set of keys")
        rows.append([inst[k] for k in names])
    return names, rows


def _seldon(obj: dict[str, Any], scalar_rows: bool, body: Body) -> None:
    body.protocol = "seldon"
    meta = obj.get("meta") or {}
    if isinstance(meta, dict):
        body.request_path = {str(k): str(v) for k, v in (meta.get("requestPath") or {}).items()}
        body.request_id = str(meta.get("puid") or "")
    status = obj.get("status")
    if isinstance(status, dict) and str(status.get("status", "")).upper() == "FAILURE":
        body.error = str(status.get("info") or status.get("reason") or "failure")
        body.error_type = str(status.get("reason") or f"status_{status.get('code', 'failure')}")
        return
    data = obj.get("data")
    if isinstance(data, dict):
        names = data.get("names")
        if "ndarray" in data:
            body.rows = as_rows(data["ndarray"], scalar_rows=scalar_rows)
        elif "tensor" in data:
            tensor = data["tensor"]
            if not isinstance(tensor, dict):
                raise DecodeError("bad_shape", "data.tensor is not an object")
            shape = tensor.get("shape")
            values = tensor.get("values")
            if not isinstance(shape, list) or not isinstance(values, list):
                raise DecodeError("bad_shape", "data.tensor needs a shape list and a values list")
            if len(shape) == 1 and not scalar_rows:
                shape = [1, shape[0]]
            body.rows = reshape_rows(flatten(values), shape)
        else:
            raise DecodeError("bad_shape", "data has neither ndarray nor tensor")
        if names is not None:
            if not isinstance(names, list):
                raise DecodeError("bad_shape", "data.names is not a list")
            body.names = tuple(map(str, names))
    elif "jsonData" in obj:
        jd = obj["jsonData"]
        body.rows = [[jd]]
    elif "strData" in obj:
        body.rows = [[obj["strData"]]]
    elif "binData" in obj:
        body.rows = [[obj["binData"]]]
    else:
        raise DecodeError("bad_shape", "SeldonMessage without data, jsonData, strData or binData")


def _tensorflow(obj: dict[str, Any], key: str, scalar_rows: bool, body: Body) -> None:
    body.protocol = "tensorflow"
    value = obj[key]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        body.names, body.rows = _rows_from_dict_instances(value)
    else:
        body.rows = as_rows(value, scalar_rows=scalar_rows)


def _oip(obj: dict[str, Any], key: str, body: Body) -> None:
    body.protocol = "v2"
    body.model_name = str(obj.get("model_name") or "")
    body.version = str(obj.get("model_version") or "")
    body.request_id = str(obj.get("id") or "")
    tensors = obj[key]
    if not isinstance(tensors, list):
        raise DecodeError("bad_shape", f"{key} is not a list")
    named: list[tuple[str, list[list[Any]]]] = []
    for t in tensors:
        if not isinstance(t, dict) or "data" not in t:
            raise DecodeError("bad_shape", f"{key} tensor without data")
        shape = t.get("shape")
        flat = flatten(t["data"])
        rows = reshape_rows(flat, shape if shape is not None else [len(flat)])
        named.append((str(t.get("name", f"t{len(named)}")), rows))
    body.names, body.rows = join_tensors(named)


def parse_body(obj: Any, *, response: bool) -> Body:
    """Read a request (`response=False`) or response body of any supported protocol.

    >>> b = parse_body({"data": {"ndarray": [[1.0, 2.0, 5.0]]}}, response=False)
    >>> (b.protocol, b.rows, b.names)
    ('seldon', [[1.0, 2.0, 5.0]], None)
    >>> parse_body({"data": {"names": ["proba"], "ndarray": [[0.4378]]}, "meta": {}},
    ...            response=True).names
    ('proba',)
    >>> parse_body({"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]},
    ...                        {"name": "b", "shape": [2], "datatype": "FP32", "data": [3, 4]}]},
    ...            response=False).rows
    [[1, 3], [2, 4]]
    >>> parse_body({"error": "boom"}, response=True).error_type
    'model_error'
    """
    if not isinstance(obj, dict):
        raise DecodeError("bad_shape", f"body is a JSON {type(obj).__name__}, not an object")
    body = Body()
    if "error" in obj and not any(k in obj for k in ("outputs", "predictions", "data")):
        body.protocol = "v2"
        body.error = str(obj["error"])
        body.error_type = "model_error"
        return body
    if response:
        if "outputs" in obj:
            _oip(obj, "outputs", body)
        elif "predictions" in obj:
            _tensorflow(obj, "predictions", True, body)
        else:
            _seldon(obj, True, body)
    else:
        if "inputs" in obj:
            _oip(obj, "inputs", body)
        elif "instances" in obj:
            _tensorflow(obj, "instances", False, body)
        else:
            _seldon(obj, False, body)
    return body
