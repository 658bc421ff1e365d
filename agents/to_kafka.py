"""`predlog replay --to-kafka`: republish logged events from files for live workers.

Each NDJSON line replay reads becomes the record `predlog ingest` would have produced
for it (`stream.decode.ingest.http_to_kafka`): CloudEvents Kafka binding, binary mode
(`ce_*` headers and `content-type`, the body as the value), key = the request id, and
record timestamp = the event time, so workers window it exactly as the original traffic.
- a captured binary-mode HTTP event `{"headers", "body"}` goes through as it is;
- a structured-mode CloudEvent line is sent as `application/cloudevents+json`;
- a captured Seldon Kafka-mode record `{"headers", "value", "timestamp"}` (bare header
  names, no time) gets `ce-` names and a `ce-time` from its record timestamp.
Missing required CloudEvents attributes (`specversion`, `id`, `source`) are filled in
(`id` deterministically from the line). A line no decoder reads goes to the dead-letter
topic with its original bytes and `stream.deadletters.dead_letter_headers` (reason,
file, line).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from agents.settings import make_redactor
from agents.sources import iter_file_lines
from stream.deadletters import dead_letter_headers
from stream.decode.ingest import KafkaRecord, http_to_kafka
from stream.decode.lines import decode_line
from stream.events import DeadLetter, SourceCoords
from stream.eventtime import format_utc, ms_to_ns

_NS = uuid.UUID("6f1c1b1e-8a4e-4d53-9a57-0c1f1d7a1a10")  # ce-id = uuid5(_NS, line)


@dataclass
class RepublishResult:
    lines: int = 0
    events: Counter = field(default_factory=Counter)  # by kind
    dead_letters: Counter = field(default_factory=Counter)  # by reason
    first_time: int | None = None  # event time, ns since the epoch
    last_time: int | None = None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _http_form(line: bytes, obj: Any) -> tuple[dict[str, str], bytes]:
    """The HTTP headers and body `predlog ingest` would have received for this line."""
    if "specversion" in obj:  # structured mode
        return {"content-type": "application/cloudevents+json"}, line
    headers = {str(k).lower(): str(v) for k, v in obj["headers"].items()}
    if "value" in obj:  # Seldon v1 Kafka mode: bare names, time from the record timestamp
        headers = {k if k.startswith("ce-") or k == "content-type" else f"ce-{k}": v
                   for k, v in headers.items()}
        ts = obj.get("timestamp")
        if "ce-time" not in headers and isinstance(ts, int | float):
            headers["ce-time"] = format_utc(ms_to_ns(ts))
        body = obj["value"]
    else:
        body = obj["body"]
    headers.setdefault("ce-specversion", "1.0")
    headers.setdefault("ce-id", str(uuid.uuid5(_NS, line.decode("utf-8", "replace"))))
    headers.setdefault("ce-source", "predlog-replay")
    headers.setdefault("content-type", "application/json")
    return headers, _str(body).encode()


def line_to_record(line: bytes, coords: SourceCoords | None = None) -> KafkaRecord | DeadLetter:
    """One NDJSON line → the `predlog.events` record, or a dead letter. Never raises.

    >>> rec = line_to_record(b'{"headers": {"ce-type": "io.seldon.serving.inference.request",'
    ...     b' "ce-requestid": "r1", "ce-inferenceservicename": "iris", "ce-id": "e1",'
    ...     b' "ce-time": "2026-11-01T00:00:00.5Z", "ce-source": "s", "ce-specversion": "1.0"},'
    ...     b' "body": "{\\\\"data\\\\": {\\\\"ndarray\\\\": [[1, 2]]}}"}')
    >>> rec.key, rec.value, dict(rec.headers)["ce_time"], record_timestamp_ms(rec)
    (b'r1', b'{"data": {"ndarray": [[1, 2]]}}', b'2026-11-01T00:00:00.5Z', 1793491200500)
    >>> line_to_record(b"{nope").reason
    'invalid_json'
    """
    decoded = decode_line(line, coords)  # the same reading as `predlog replay`
    if isinstance(decoded, DeadLetter):
        return decoded
    try:
        headers, body = _http_form(line, orjson.loads(line))
        result = http_to_kafka(headers, body, coords.path if coords else "/")
    except Exception as exc:  # noqa: BLE001 - a mapping bug must not stop the republish
        return DeadLetter("decoder_error", f"{type(exc).__name__}: {exc}", bytes(line),
                          source=coords)
    if isinstance(result, DeadLetter):
        result.raw, result.source = bytes(line), coords
    return result


def record_timestamp_ms(record: KafkaRecord) -> int:
    """The Kafka record timestamp: the event time, in milliseconds."""
    return round(record.event.event_time, -6) // 1_000_000  # from ns, half to even


def republish(items: Iterable[tuple[bytes, SourceCoords]], producer: Any, *, topic: str,
              dlq_topic: str, redact_dead_letter: Any = None) -> RepublishResult:
    """Send every line's record (or dead letter) with a kafka-python `KafkaProducer`; flushes,
    and raises `RuntimeError` if any send failed."""
    result = RepublishResult()
    failures: list[BaseException] = []
    for line, coords in items:
        result.lines += 1
        rec = line_to_record(line, coords)
        if isinstance(rec, DeadLetter):
            result.dead_letters[rec.reason] += 1
            if redact_dead_letter is not None:
                rec = redact_dead_letter(rec)
            future = producer.send(dlq_topic, value=rec.raw, headers=dead_letter_headers(rec))
        else:
            t = rec.event.event_time
            result.events[rec.event.kind.value] += 1
            result.first_time = t if result.first_time is None else min(result.first_time, t)
            result.last_time = t if result.last_time is None else max(result.last_time, t)
            future = producer.send(topic, key=rec.key, value=rec.value, headers=rec.headers,
                                   timestamp_ms=record_timestamp_ms(rec))
        future.add_errback(failures.append)
    producer.flush()
    if failures:
        raise RuntimeError(f"{len(failures)} records not delivered, first: {failures[0]!r}")
    return result


def republish_files(paths: list[Path], settings: Any, *, topic: str | None = None,
                    dlq_topic: str | None = None, producer: Any = None) -> RepublishResult:
    """`predlog replay --to-kafka`: the files' events to `settings.topic_events` (dead letters
    to `settings.topic_dlq`) on `settings.kafka_bootstrap`."""
    from stream.decode import native

    native.set_enabled(settings.native)
    own = producer is None
    if own:
        from kafka import KafkaProducer

        from agents.kafka_auth import kafka_python_kwargs

        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                 linger_ms=20, max_in_flight_requests_per_connection=1,
                                 **kafka_python_kwargs(settings))
    try:
        return republish(iter_file_lines(paths), producer, topic=topic or settings.topic_events,
                         dlq_topic=dlq_topic or settings.topic_dlq,
                         redact_dead_letter=make_redactor(settings).dead_letter)
    finally:
        if own:
            producer.close()
