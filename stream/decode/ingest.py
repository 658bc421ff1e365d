"""What the HTTP ingest gateway does with one logged event, minus the I/O.

An HTTP CloudEvent (binary or structured mode) is parsed and validated with the
CloudEvents SDK, its payload is decoded with predlog's decoders (so an event that
workers could not read is refused at the door and dead-lettered), and it is turned
into a Kafka binary-mode record (CloudEvents Kafka protocol binding) keyed by the
request id, so the request, response and feedback of one prediction share a partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat

from stream.decode.cloudevent import decode_cloudevent
from stream.events import DeadLetter, DecodeError, PredictionEvent, SourceCoords
from stream.eventtime import parse_rfc3339

_FORMAT = JSONFormat()


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    event: PredictionEvent


def _keep_time_text(headers: dict[str, bytes], text: str | None) -> None:
    """The SDK rewrites `ce-time` through a datetime (microseconds): keep the logged text,
    nanoseconds included, when predlog reads it (`parse_rfc3339`)."""
    if text is None or "ce_time" not in headers:
        return
    try:
        parse_rfc3339(text)
    except ValueError:
        return
    headers["ce_time"] = text.encode()


def http_to_kafka(
    headers: dict[str, str], body: bytes, path: str = "/"
) -> KafkaRecord | DeadLetter:
    """Validate one HTTP CloudEvent and map it to a Kafka record, or say why not.

    >>> r = http_to_kafka({"ce-specversion": "1.0", "ce-id": "e1", "ce-source": "s",
    ...                    "ce-type": "io.seldon.serving.inference.request",
    ...                    "ce-requestid": "r1", "ce-inferenceservicename": "iris",
    ...                    "ce-time": "2024-01-01T00:00:00Z", "content-type": "application/json"},
    ...                   b'{"data": {"ndarray": [[1, 2]]}}')
    >>> r.key, r.value, dict(r.headers)["ce_requestid"]
    (b'r1', b'{"data": {"ndarray": [[1, 2]]}}', b'r1')
    >>> http_to_kafka({"content-type": "application/json"}, b"{}").reason
    'invalid_cloudevent'
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    source = SourceCoords(kind="http", path=path)
    try:
        binary = any(k.startswith("ce-") for k in lowered)  # the SDK's own rule
        # Binary mode: the SDK reads the envelope (the ce- headers) and the body is the
        # data, which predlog's decoders read below. The SDK would parse it as JSON and
        # serialise it again for `to_binary`, both thrown away (its `read_data` refuses no
        # body), so it is given none: a third of this function's time.
        sdk_body = b"" if binary else body
        try:
            event = ce_http.from_http(ce_http.HTTPMessage(headers=lowered, body=sdk_body),
                                      _FORMAT)
        except Exception as exc:  # the SDK raises several types for a bad envelope
            raise DecodeError("invalid_cloudevent", f"{type(exc).__name__}: {exc}") from None
        message = ce_kafka.to_binary(event, _FORMAT, key_mapper=lambda _e: None)
        _keep_time_text(message.headers, lowered.get("ce-time") if binary else None)
        # Binary mode: the HTTP body is the data, keep its bytes exactly.
        value = body if binary else message.value
        decoded = decode_cloudevent(message.headers, value, source_format="cloudevent-http")
    except DecodeError as exc:
        return DeadLetter(exc.reason, exc.detail, body, dict(lowered), source)
    key = decoded.request_id.encode()
    return KafkaRecord(key=key, value=value, headers=list(message.headers.items()), event=decoded)
