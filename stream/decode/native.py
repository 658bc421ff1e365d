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

`make venv` and the image install the package. Without it, or switched off with
`set_enabled(False)` (what the drivers do for the setting `native`, PREDLOG_NATIVE=0),
`new_decoder` returns None and decoding takes the Python path only; a missing module is
logged once, as a warning, at import. The functions `with_fast_path` and
`with_line_fast_path` return follow the switch whenever it is set, so callers may import
them before the drivers read their settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from stream.events import EventKind, ModelRef, PredictionEvent, SourceCoords

log = logging.getLogger(__name__)


def _load() -> Any | None:
    try:
        import predlog_native
    except ImportError as exc:
        log.warning("predlog-native is not installed (%s): decoding takes the Python path "
                    "only (pip install ./native)", exc)
        return None
    return predlog_native


_MODULE = _load()
_ENABLED = True  # set by the drivers from their settings (`set_enabled`)
_SWITCHES: list[Callable[[], None]] = []  # re-pick the implementation of each fast path


def set_enabled(enabled: bool) -> None:
    """Use the compiled decoder (when installed) or only the Python decoders, from now on."""
    global _ENABLED
    _ENABLED = enabled
    for refresh in _SWITCHES:
        refresh()


def enabled() -> bool:
    """Whether decoding uses the compiled decoder: installed and not switched off."""
    return _ENABLED and _MODULE is not None


def new_decoder(fallback: Callable[..., Any] | None = None,
                line_fallback: Callable[..., Any] | None = None) -> Any:
    """A `predlog_native.Decoder` building predlog's event records (None without it)."""
    if not enabled():
        return None
    assert _MODULE is not None
    return _MODULE.Decoder(PredictionEvent, ModelRef, SourceCoords, EventKind.REQUEST,
                           EventKind.RESPONSE, fallback=fallback, line_fallback=line_fallback)


def _switchable(python: Callable[..., Any], make_decoder: Callable[[], Any],
                method: str) -> Callable[..., Any]:
    """A function calling `method` of `make_decoder()`'s decoder while the compiled decoder
    is enabled, else `python`; `set_enabled` re-picks."""
    impl = python

    def refresh() -> None:
        nonlocal impl
        decoder = make_decoder()
        impl = python if decoder is None else getattr(decoder, method)

    def decode(*args: Any, **kwargs: Any) -> Any:
        return impl(*args, **kwargs)

    decode.__doc__ = python.__doc__
    refresh()
    _SWITCHES.append(refresh)
    return decode


def with_fast_path(python_decoder: Callable[..., Any]) -> Callable[..., Any]:
    """`python_decoder` (a `decode_kafka_record`) behind the compiled fast path: one call
    that returns the compiled decoder's event, or else `python_decoder`'s answer for the
    same arguments; `python_decoder`'s answer alone when the module is missing or
    switched off."""
    return _switchable(python_decoder, lambda: new_decoder(python_decoder),
                       "decode_kafka_record")


def with_line_fast_path(python_decode_line: Callable[..., Any]) -> Callable[..., Any]:
    """`python_decode_line` (a `decode_line`) behind the compiled fast path for replay
    lines: one call `(line, source=None)` that returns the compiled decoder's event for a
    captured binary-mode HTTP CloudEvent line it fully handles, or else
    `python_decode_line`'s answer for the same arguments; `python_decode_line`'s answer
    alone when the module is missing or switched off."""
    return _switchable(python_decode_line, lambda: new_decoder(line_fallback=python_decode_line),
                       "decode_line_record")


def new_batch_decoder() -> Any:
    """A `predlog_native.BatchDecoder` (columns for a list of Kafka records; its caller is
    stream/decode/batch.py, which asks `enabled()` at each call), None when the module is
    missing."""
    return None if _MODULE is None else _MODULE.BatchDecoder()
