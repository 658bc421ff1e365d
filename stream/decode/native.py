"""The compiled fast path of `decode_kafka_record` (package `predlog-native`, native/).

`decode_kafka(topic, key, value, headers, timestamp_ms, partition, offset)` takes the
arguments of `stream.decode.kafka_records.decode_kafka_record` and returns the very
`PredictionEvent` the Python decoders build from them (equal, `repr` included), or None
for any record it does not fully handle: then the Python decoders run, and they stay the
definition of every event and the only source of dead letters. It never raises. What it
handles — Seldon v1 Kafka-mode and CloudEvents Kafka-binding records with SeldonMessage
ndarray/tensor bodies, and Seldon v2 protobuf messages with one raw-contents tensor — is
documented in native/src/lib.rs; tests/unit/test_decode_native.py holds it to the Python
decoders on fixtures and generated records.

`make venv` and the image install the package. Without it (or with `PREDLOG_NATIVE=0`)
`decode_kafka` is None and decoding takes the Python path only; a missing module is
logged once, as a warning, at import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from stream.events import EventKind, ModelRef, PredictionEvent, SourceCoords

log = logging.getLogger(__name__)


def _load() -> Callable[..., PredictionEvent | None] | None:
    if os.environ.get("PREDLOG_NATIVE", "1") == "0":
        return None
    try:
        import predlog_native
    except ImportError as exc:
        log.warning("predlog-native is not installed (%s): decoding takes the Python path "
                    "only (pip install ./native)", exc)
        return None
    decoder: Any = predlog_native.Decoder(
        PredictionEvent, ModelRef, SourceCoords, EventKind.REQUEST, EventKind.RESPONSE)
    return decoder.decode_kafka


decode_kafka = _load()
