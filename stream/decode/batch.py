"""A list of Kafka records (one fetch) → one `EventBatch` and the dead letters. Never raises.

`decode_kafka_batch(records)` takes 7-tuples `(topic, key, value, headers, timestamp_ms,
partition, offset)`, the arguments of `decode_kafka_record_python`. The compiled decoder
(native/src/batch.rs, when installed and not switched off with `PREDLOG_NATIVE=0`) fills
the columns for the records it takes; every other record goes through
`decode_kafka_record_python` and `BatchBuilder` (stream/batch.py, the definition), and a
record that decoder cannot read is a `DeadLetter`, exactly as one at a time. The answer is
the same with or without the compiled decoder (tests/unit/test_decode_batch.py).

Event time is exact int64 nanoseconds: the `time` attribute (RFC 3339, up to 9 fraction
digits; what `stream.eventtime.parse_rfc3339` accepts) for the CloudEvents decoders, else
the record timestamp (ms × 1,000,000; a float one floored). A record whose time does not
fit in int64 nanoseconds (before 1677 or after 2262) becomes a `bad_time` dead letter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import numpy as np

from stream.batch import INT64_NS, BatchBuilder, ColumnGroup, EventBatch, merge
from stream.decode import native
from stream.decode.kafka_records import _str_headers, decode_kafka_record_python
from stream.events import DeadLetter, ModelRef, PredictionEvent
from stream.eventtime import _days_from_civil

KafkaRecord = tuple[str, Any, bytes | None, Any, float, int, int]

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def rfc3339_ns(text: str) -> int:
    """The exact nanoseconds since the epoch of a time `parse_rfc3339` reads (the same
    texts accepted, the same forms: its `...Z` arithmetic, else its regular expression and
    `datetime`), the first 9 fraction digits kept. Raises ValueError like it.

    >>> rfc3339_ns("2026-03-01T00:00:00.000000001Z") - rfc3339_ns("2026-03-01T00:00:00Z")
    1
    >>> rfc3339_ns("2020-11-06T10:35:09.5+01:00")
    1604655309500000000
    """
    if (len(text) >= 20 and text[-1] in "Zz" and text[4] == "-" and text[10] in "Tt"
            and (text[19] == "." or len(text) == 20)):
        frac = text[20:-1]
        head = text[:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
        if head.isdigit() and text[13] == ":" and (not frac or frac.isdigit()):
            y, mo, d = int(text[:4]), int(text[5:7]), int(text[8:10])
            hh, mi, ss = int(text[11:13]), int(text[14:16]), int(text[17:19])
            if 1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mi < 60 and ss < 61:
                seconds = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss
                return seconds * 10**9 + (int(frac[:9].ljust(9, "0")) if frac else 0)
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    date, clock, frac, tz = m.groups()
    if not tz or tz.upper() == "Z":
        tz = "+00:00"
    elif ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    seconds = (datetime.fromisoformat(f"{date}T{clock}{tz}") - _EPOCH) // _SECOND
    return seconds * 10**9 + int((frac or "").ljust(9, "0"))


def timestamp_ns(timestamp_ms: Any) -> int:
    """A Kafka record timestamp (ms) in nanoseconds, exactly (a float one floored)."""
    if isinstance(timestamp_ms, int):
        return int(timestamp_ms) * 10**6
    return math.floor(Fraction(timestamp_ms) * 10**6)


def event_time_ns(event: PredictionEvent, timestamp_ms: Any) -> int:
    """The exact time of an event a Python Kafka decoder returned for a record with this
    timestamp: its `time` attribute (CloudEvents decoders), else the record's timestamp
    (Seldon v2 always)."""
    if event.source_format != "seldon-v2" and "time" in event.headers:
        return rfc3339_ns(event.headers["time"])
    return timestamp_ns(timestamp_ms)


def decode_kafka_batch_python(
    records: Sequence[KafkaRecord], indices: Sequence[int] | None = None
) -> tuple[EventBatch, list[DeadLetter]]:
    """The definition: each record (those at `indices`, default all) through
    `decode_kafka_record_python`, its event into a `BatchBuilder`."""
    builder, dead = BatchBuilder(), []
    for i in range(len(records)) if indices is None else indices:
        topic, key, value, headers, ts, partition, offset = records[i]
        item = decode_kafka_record_python(topic, key, value, headers, ts,
                                          partition=partition, offset=offset)
        if isinstance(item, DeadLetter):
            dead.append(item)
            continue
        try:
            time_ns = event_time_ns(item, ts)
            if not INT64_NS[0] <= time_ns < INT64_NS[1]:
                raise ValueError(f"{time_ns} ns is outside the int64 nanosecond range")
        except (ValueError, TypeError, OverflowError) as exc:
            dead.append(DeadLetter("bad_time", str(exc), value or b"",
                                   _str_headers(headers or ()), item.source))
            continue
        builder.add(item, i, time_ns)
    return builder.build(), dead


_NATIVE = native.new_batch_decoder()  # None without the module


def decode_kafka_batch(records: Sequence[KafkaRecord]) -> tuple[EventBatch, list[DeadLetter]]:
    """`records` as one `EventBatch` (in their order) and the dead letters (in their
    order): the compiled decoder's columns for what it takes (unless the setting `native`
    switched it off), the definition for the rest."""
    if _NATIVE is None or not native.enabled():
        return decode_kafka_batch_python(records)
    records = records if type(records) is list else list(records)
    try:
        cols = _NATIVE.decode_kafka_batch(records)
    except RuntimeError:  # the decoder busy in another thread: the definition decodes
        return decode_kafka_batch_python(records)
    unhandled = np.frombuffer(cols["unhandled"], np.int64)
    if not len(unhandled):
        return _from_native(cols), []
    rest, dead = decode_kafka_batch_python(records, unhandled.tolist())
    return merge([_from_native(cols), rest]), dead


def _from_native(cols: dict[str, Any]) -> EventBatch:
    def arr(name: str, dtype: Any) -> np.ndarray:
        return np.frombuffer(cols[name], dtype)

    n = len(cols["request_id"])
    request_id = np.empty(n, object)
    request_id[:] = cols["request_id"]
    groups = []
    for model, side, names, width, values, recs, offsets in cols["groups"]:
        offsets = np.frombuffer(offsets, np.int64)
        values = np.frombuffer(values, np.float64).reshape(int(offsets[-1]), width)
        groups.append(ColumnGroup(model, side, names, values, np.frombuffer(recs, np.int64),
                                  offsets))
    none = np.full(n, -1, np.int32)
    return EventBatch(
        index=arr("index", np.int64), kind=arr("kind", np.int8), request_id=request_id,
        model=arr("model", np.int32), event_time_ns=arr("event_time_ns", np.int64),
        protocol=arr("protocol", np.int32), source_format=arr("source_format", np.int32),
        error_type=none, error=none.copy(), reward=np.full(n, np.nan),
        rows=arr("rows", np.int32), topic=arr("topic", np.int32),
        partition=arr("partition", np.int64), offset=arr("offset", np.int64),
        models=[ModelRef(*m) for m in cols["models"]], protocols=cols["protocols"],
        source_formats=cols["source_formats"], topics=cols["topics"], groups=groups)
