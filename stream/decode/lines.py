"""NDJSON log lines → events or a dead letter. Never raises.

A line is one of:
- a captured binary-mode HTTP CloudEvent `{"headers": {...}, "body": "<string>"}`;
- a captured Kafka record `{"headers": {...}, "value": "<string>", "timestamp": ms}`
  (Seldon v1 Kafka mode: headers without the `ce-` prefix, no time header);
- a structured-mode CloudEvent `{"specversion": "1.0", "type": ..., "data": {...}}`.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.decode.cloudevent import decode_cloudevent
from stream.decode.native import with_line_fast_path
from stream.events import DeadLetter, DecodeError, PredictionEvent, SourceCoords
from stream.eventtime import ms_to_ns

_STRUCTURED_DATA = ("data", "data_base64")


def _body_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict | list):
        return orjson.dumps(value)
    raise DecodeError("bad_shape", f"body is a {type(value).__name__}")


def _decode_obj(obj: Any, source: SourceCoords | None) -> PredictionEvent:
    if not isinstance(obj, dict):
        raise DecodeError("bad_shape", "log line is not a JSON object")
    if "specversion" in obj:
        attrs = {k: v for k, v in obj.items() if k not in _STRUCTURED_DATA}
        if "data_base64" in obj:
            import base64

            raw = base64.b64decode(obj["data_base64"])
        else:
            raw = _body_bytes(obj.get("data"))
        return decode_cloudevent({str(k): str(v) for k, v in attrs.items()}, raw,
                                 source_format="cloudevent-structured")
    headers = obj.get("headers")
    if not isinstance(headers, dict):
        raise DecodeError("unknown_format", "neither a structured CloudEvent nor {headers, body}")
    if "value" in obj:  # a captured Kafka record (Seldon v1 Kafka mode)
        ts = obj.get("timestamp")
        fallback = ms_to_ns(ts) if isinstance(ts, int | float) else None
        return decode_cloudevent(
            headers, _body_bytes(obj["value"]), source_format="seldon-v1-kafka",
            fallback_time=fallback,
        )
    if "body" not in obj:
        raise DecodeError("unknown_format", "captured event without body")
    return decode_cloudevent(headers, _body_bytes(obj["body"]), source_format="seldon-v1-http")


def decode_line_python(
    line: bytes, source: SourceCoords | None = None
) -> PredictionEvent | DeadLetter:
    """Decode one NDJSON line: the Python definition (`decode_line` is this behind the
    compiled fast path, which gives the same event for the lines it decodes).

    >>> decode_line_python(b'not json').reason
    'invalid_json'
    >>> decode_line_python(b'{"headers": {"ce-type": "x"}, "body": "{}"}').reason
    'unknown_event_type'
    """
    try:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DecodeError("invalid_json", str(exc)) from None
        event = _decode_obj(obj, source)
        event.source = source
        return event
    except DecodeError as exc:
        return DeadLetter(exc.reason, exc.detail, bytes(line), source=source)
    except Exception as exc:  # a decoder bug must not stop the stream: dead-letter it
        detail = f"{type(exc).__name__}: {exc}"
        return DeadLetter("decoder_error", detail, bytes(line), source=source)


# What the replay calls: the compiled decoder for the common captured HTTP CloudEvent
# lines, falling back to `decode_line_python` (the definition, and the only source of
# dead letters) for everything else; `decode_line_python` itself without predlog-native.
decode_line = with_line_fast_path(decode_line_python)
