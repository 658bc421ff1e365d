"""The compiled fast path of `decode_kafka_record` (package `predlog-native`, native/).

`decode_kafka(topic, key, value, headers, timestamp_ms, partition, offset)` takes the
arguments of `stream.decode.kafka_records.decode_kafka_record_python` and returns the
very `PredictionEvent` the Python decoders build from them (equal, `repr` included), or
None for any record it does not fully handle. It never raises. `with_fast_path(python)`
puts it in front of the Python definition in one compiled call: the Python decoders run
for every record it answers None for, and they stay the definition of every event and
the only source of dead letters. What it
handles — Seldon v1 Kafka-mode and CloudEvents Kafka-binding records with SeldonMessage
ndarray/tensor bodies, and Seldon v2 protobuf messages with one raw-contents tensor — is
documented in native/src/lib.rs; tests/unit/test_decode_native.py holds it to the Python
decoders on fixtures and generated records.

`with_line_fast_path(python)` does the same for `stream.decode.lines.decode_line` (the
replay's reader): `Decoder.decode_line(line, source)` answers the captured binary-mode HTTP
CloudEvent lines `{"headers": {...}, "body": "<SeldonMessage JSON>"}` with a Seldon request
or response type, and None for every other line (tests/unit/test_decode_native_lines.py).

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


def _load() -> Any | None:
    if os.environ.get("PREDLOG_NATIVE", "1") == "0":
        return None
    try:
        import predlog_native
    except ImportError as exc:
        log.warning("predlog-native is not installed (%s): decoding takes the Python path "
                    "only (pip install ./native)", exc)
        return None
    return predlog_native


_MODULE = _load()


def new_decoder(fallback: Callable[..., Any] | None = None,
                line_fallback: Callable[..., Any] | None = None) -> Any:
    """A `predlog_native.Decoder` building predlog's event records (None without it)."""
    if _MODULE is None:
        return None
    return _MODULE.Decoder(PredictionEvent, ModelRef, SourceCoords, EventKind.REQUEST,
                           EventKind.RESPONSE, fallback=fallback, line_fallback=line_fallback)


_DECODER = new_decoder()
decode_kafka: Callable[..., PredictionEvent | None] | None = (
    _DECODER.decode_kafka if _DECODER is not None else None)


def with_fast_path(python_decoder: Callable[..., Any]) -> Callable[..., Any]:
    """`python_decoder` (a `decode_kafka_record`) behind the compiled fast path: one call
    that returns the compiled decoder's event, or else `python_decoder`'s answer for the
    same arguments. `python_decoder` itself when the module is missing or switched off."""
    decoder = new_decoder(python_decoder)
    return python_decoder if decoder is None else decoder.decode_kafka_record


def with_line_fast_path(python_decode_line: Callable[..., Any]) -> Callable[..., Any]:
    """`python_decode_line` (a `decode_line`) behind the compiled fast path for replay
    lines: one call `(line, source=None)` that returns the compiled decoder's event for a
    captured binary-mode HTTP CloudEvent line it fully handles, or else
    `python_decode_line`'s answer for the same arguments. `python_decode_line` itself when
    the module is missing or switched off."""
    decoder = new_decoder(line_fallback=python_decode_line)
    return python_decode_line if decoder is None else decoder.decode_line_record


def new_batch_decoder() -> Any:
    """A `predlog_native.BatchDecoder` (columns for a list of Kafka records; its caller is
    stream/decode/batch.py), None when the module is missing or switched off."""
    return None if _MODULE is None else _MODULE.BatchDecoder()
