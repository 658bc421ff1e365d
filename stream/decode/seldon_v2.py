"""Seldon Core v2 model topics: `seldon.<ns>.model.<model>.inputs|outputs`.

Values are OIP protobuf `ModelInferRequest` / `ModelInferResponse` (or their JSON
form); the request id is the `x-request-id` header, else the record key, which
is `<id>`, `<resource>.<id>` or `<partition>.<resource>.<id>` by Seldon version.
The record timestamp is the event time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from google.protobuf.message import DecodeError as ProtobufDecodeError

from stream.decode.bodies import parse_body
from stream.decode.cloudevent import normalize_headers
from stream.decode.oip.inference_pb2 import ModelInferRequest, ModelInferResponse
from stream.decode.oiptensors import raw_tensor_rows, tensors_to_rows
from stream.events import DecodeError, EventKind, ModelRef, PredictionEvent
from stream.eventtime import ms_to_ns

_BYTES = (bytes, bytearray)  # a tuple: `bytes | bytearray` is rebuilt on every call
TOPIC = re.compile(r"^seldon\.(?P<ns>[^.]+)\.model\.(?P<model>.+)\.(?P<dir>inputs|outputs)$")


def parse_topic(topic: str) -> tuple[str, str, EventKind]:
    """Namespace, model and direction of a Seldon v2 model topic.

    >>> parse_topic("seldon.prod.model.iris.outputs")
    ('prod', 'iris', <EventKind.RESPONSE: 'response'>)
    """
    parsed = _TOPICS.get(topic)
    if parsed is not None:
        return parsed
    m = TOPIC.match(topic)
    if not m:
        raise DecodeError("unknown_topic", f"{topic!r} is not a Seldon v2 model topic")
    kind = EventKind.REQUEST if m["dir"] == "inputs" else EventKind.RESPONSE
    parsed = m["ns"], m["model"], kind
    if len(_TOPICS) < 1024:  # a consumer reads a handful of model topics
        _TOPICS[topic] = parsed
    return parsed


_TOPICS: dict[str, tuple[str, str, EventKind]] = {}
_REQUEST = EventKind.REQUEST  # enum attribute access is slow


def request_id_from_key(key: bytes | str | None) -> str:
    """The request id in a v2 record key, whatever its form.

    >>> [request_id_from_key(k) for k in (b"cgs1", "iris.cgs1", "0.iris.cgs1", None)]
    ['cgs1', 'cgs1', 'cgs1', '']
    """
    if key is None:
        return ""
    text = key.decode("utf-8", "replace") if isinstance(key, _BYTES) else str(key)
    return text.rsplit(".", 1)[-1]


def _from_proto(raw: bytes, kind: EventKind) -> tuple[Any, tuple | None, list]:
    msg = ModelInferRequest() if kind is EventKind.REQUEST else ModelInferResponse()
    try:
        msg.ParseFromString(raw)
    except ProtobufDecodeError as exc:
        raise DecodeError("invalid_protobuf", str(exc)) from None
    if kind is _REQUEST:
        tensors, raw_contents = msg.inputs, msg.raw_input_contents
    else:
        tensors, raw_contents = msg.outputs, msg.raw_output_contents
    names_rows = raw_tensor_rows(tensors, raw_contents) or tensors_to_rows(tensors, raw_contents)
    return msg, *names_rows


def _json_object(value: bytes) -> Any | None:
    """The JSON form of a message, or None when the value is protobuf.

    A protobuf OIP message never starts with `{` (it would be field 15, a group),
    so a value whose first non-blank byte is `{` is JSON.
    """
    if value[:1] != b"{" and value.lstrip(b" \t\r\n")[:1] != b"{":
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        try:  # a protobuf that happens to start with blank bytes and a brace
            _from_proto(value, EventKind.REQUEST)
        except DecodeError:
            raise DecodeError("invalid_json", "value starts like JSON but does not parse") from None
        return None


def decode_v2_record(
    topic: str,
    key: bytes | str | None,
    value: bytes,
    headers: Mapping[str, Any] | Iterable[tuple[str, Any]],
    timestamp_ms: float,
) -> PredictionEvent:
    """Decode one record of a Seldon v2 model topic. Raises `DecodeError`."""
    namespace, model, kind = parse_topic(topic)
    attrs = normalize_headers(headers) if headers else {}
    obj = _json_object(value)
    if obj is not None:
        body = parse_body(obj, response=kind is not _REQUEST)
        msg_id, version, names, rows = body.request_id, body.version, body.names, body.rows
        error, error_type, protocol = body.error, body.error_type, "v2-json"
    else:
        msg, names, rows = _from_proto(value, kind)
        msg_id, version, error, error_type, protocol = msg.id, msg.model_version, None, None, "v2"
    request_id = attrs.get("x-request-id") or request_id_from_key(key) or msg_id
    if not request_id:
        raise DecodeError("missing_request_id", "no x-request-id header, key or message id")
    # Positional arguments in PredictionEvent's field order (keywords cost ~0.5 µs).
    ref = ModelRef(model, namespace, model, "", version)
    if kind is _REQUEST:
        return PredictionEvent(kind, request_id, ref, ms_to_ns(timestamp_ms), protocol,
                               "seldon-v2", "", names, rows, None, [], None, None,
                               error, error_type, value, attrs)
    return PredictionEvent(kind, request_id, ref, ms_to_ns(timestamp_ms), protocol,
                           "seldon-v2", "", None, [], names, rows, None, None,
                           error, error_type, value, attrs)
