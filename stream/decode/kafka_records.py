"""Kafka records of any supported topic → events or a dead letter. Never raises.

- Seldon v2 model topics (`seldon.<ns>.model.<model>.inputs|outputs`): OIP protobuf/JSON.
- `predlog.events`: CloudEvents Kafka binding (binary mode, `ce_` headers) written by
  `predlog ingest`; a structured-mode value (`application/cloudevents+json`) too.
- The Seldon v1 executor topic (`seldon`): Kafka-mode logger records, bare headers,
  no time header, so the record timestamp is the event time.
- MLServer `mlserver-input|mlserver-output`: OIP JSON, key = request id,
  `mlserver-model` header, CloudEvents headers on outputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stream.decode.cloudevent import decode_attributes, normalize_headers
from stream.decode.lines import decode_line
from stream.decode.native import with_fast_path
from stream.decode.seldon_v2 import TOPIC as V2_TOPIC
from stream.decode.seldon_v2 import decode_v2_record
from stream.events import DeadLetter, DecodeError, PredictionEvent, SourceCoords
from stream.eventtime import ms_to_ns

_BYTES = (bytes, bytearray)  # a tuple: `bytes | bytearray` is rebuilt on every call
MLSERVER_TYPES = {
    "input": "io.seldon.serving.inference.request",
    "output": "io.seldon.serving.inference.response",
}


def _key_text(key: bytes | str | None) -> str:
    if key is None:
        return ""
    return key.decode("utf-8", "replace") if isinstance(key, _BYTES) else str(key)


def decode_kafka_record_python(
    topic: str,
    key: bytes | str | None,
    value: bytes | None,
    headers: Iterable[tuple[str, Any]] | dict | None,
    timestamp_ms: float,
    *,
    partition: int = -1,
    offset: int = -1,
) -> PredictionEvent | DeadLetter:
    """Decode one consumed record; a record no decoder can read becomes a `DeadLetter`.

    The Python definition. `decode_kafka_record` is this behind the compiled fast path
    (`stream.decode.native`), which gives the same event for the records it decodes.
    """
    coords = SourceCoords("kafka", topic, partition, offset)
    hdrs = headers or ()
    try:
        if value is None:
            raise DecodeError("empty_value", "record has no value (tombstone)")
        route = _ROUTES.get(topic) or _route(topic)
        if route is _V2:
            event = decode_v2_record(topic, key, value, hdrs, timestamp_ms)
        else:
            attrs = normalize_headers(hdrs)
            if "structured" in attrs.get("content-type", "") or (
                not attrs and value.lstrip()[:1] == b"{" and b'"specversion"' in value[:4096]
            ):
                item = decode_line(value, coords)
                if isinstance(item, DeadLetter):
                    item.headers = {k: str(v) for k, v in attrs.items()}
                return item
            default_type, fmt = route
            if not default_type and "specversion" in attrs:
                fmt = "cloudevent-kafka"  # Seldon v1 Kafka mode has no specversion
            event = decode_attributes(
                attrs, value, source_format=fmt, fallback_time=ms_to_ns(timestamp_ms),
                default_type=default_type, fallback_request_id=_key_text(key),
            )
        event.source = coords
        return event
    except DecodeError as exc:
        return DeadLetter(exc.reason, exc.detail, value or b"", _str_headers(hdrs), coords)
    except Exception as exc:  # a decoder bug must not stop the stream: dead-letter it
        detail = f"{type(exc).__name__}: {exc}"
        return DeadLetter("decoder_error", detail, value or b"", _str_headers(hdrs), coords)


# What consumers call: the compiled decoder for the common records, falling back to
# `decode_kafka_record_python` (which stays the definition) for everything else. Without
# the predlog-native package it is `decode_kafka_record_python` itself.
decode_kafka_record = with_fast_path(decode_kafka_record_python)

_V2 = ("", "seldon-v2")
_ROUTES: dict[str, tuple[str, str]] = {}


def _route(topic: str) -> tuple[str, str]:
    """How a topic's records are read: `_V2`, or (default CloudEvents type, source format).

    A consumer reads a handful of topics; the answer is kept per topic (bounded).
    """
    if V2_TOPIC.match(topic):
        route = _V2
    else:
        default_type = ""
        if topic.startswith("mlserver-"):
            default_type = MLSERVER_TYPES.get(topic.rsplit("-", 1)[-1], "")
        route = (default_type, "mlserver" if default_type else "seldon-v1-kafka")
    if len(_ROUTES) < 1024:
        _ROUTES[topic] = route
    return route


def _str_headers(hdrs: Iterable[tuple[str, Any]] | dict) -> dict[str, str]:
    items = hdrs.items() if isinstance(hdrs, dict) else hdrs
    return {
        k: (v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else str(v))
        for k, v in items
    }
