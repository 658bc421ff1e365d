"""A list of Kafka records (one fetch) → one `EventBatch` and the dead letters. Never raises.

`decode_kafka_batch(records)` takes 7-tuples `(topic, key, value, headers, timestamp_ms,
partition, offset)`, the arguments of `decode_kafka_record_python`. The compiled decoder
(native/src/batch.rs, when installed and not switched off with `PREDLOG_NATIVE=0`) fills
the columns for the records it takes; every other record goes through
`decode_kafka_record_python` and `BatchBuilder` (stream/batch.py, the definition), and a
record that decoder cannot read is a `DeadLetter`, exactly as one at a time. The answer is
the same with or without the compiled decoder (tests/unit/test_decode_batch.py).

Event time is the event's own: exact int nanoseconds as `stream.eventtime` defines them
(RFC 3339 with the first 9 fraction digits, or the record timestamp in ms × 1,000,000). A
record whose time does not fit in int64 nanoseconds (before 1677 or after 2262) becomes
a `bad_time` dead letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stream.batch import INT64_NS, BatchBuilder, ColumnGroup, EventBatch, merge
from stream.decode import native
from stream.decode.kafka_records import _str_headers, decode_kafka_record_python
from stream.events import DeadLetter, ModelRef

KafkaRecord = tuple[str, Any, bytes | None, Any, float, int, int]


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
        time_ns = item.event_time  # int ns, as `stream.eventtime` defines it
        if not INT64_NS[0] <= time_ns < INT64_NS[1]:
            dead.append(DeadLetter("bad_time", f"{time_ns} ns is outside the int64 nanosecond "
                                   "range", value or b"", _str_headers(headers or ()),
                                   item.source))
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
