"""Ground-truth labels: labels-topic records, label files and Seldon feedback → `Label`.

Three sources give labels (`Label.source` says which; it is also the `source` label
of `predlog_labels_unmatched_total`):

- ``topic``: one JSON object per record on the labels topic,
  ``{"request_id": str, "row": int (optional, default 0), "label": scalar,
  "timestamp": RFC 3339 string or epoch seconds (optional)}``. Without a timestamp
  the record's own timestamp (`fallback_time`) is the label time.
- ``file``: a CSV file with the header ``request_id,row,label[,timestamp]`` (``row``
  may be left out or empty) or NDJSON of the topic's objects; the first non-blank
  line decides (``{`` → NDJSON). A label without a timestamp has no time (`None`).
- ``feedback``: a Seldon feedback event (`PredictionEvent` of kind FEEDBACK); its
  ``truth`` holds one label per row, the event time is the label time.

Values: a label is a scalar — int, float or str (a JSON ``true``/``false`` becomes
1/0). CSV cells are typed the way a person reading the file would: ``3`` → int,
``0.5`` → float, anything else a str. Missing, empty, non-scalar or non-finite
labels, bad rows and bad times become a `DeadLetter` (reasons ``missing_label``,
``bad_label``, ``non_finite_value``, ``missing_request_id``, ``bad_row``,
``bad_time``, ``bad_shape``, ``invalid_json``, ``bad_label_header``). Nothing here
raises. Epoch timestamps are seconds, never milliseconds.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stream.decode.jsonbody import loads
from stream.events import DeadLetter, DecodeError, EventKind, PredictionEvent, SourceCoords
from stream.eventtime import parse_rfc3339, seconds_to_ns

LabelValue = int | float | str
_Lines = Iterator[bytes | str]
_Out = Iterator["Label | DeadLetter"]


@dataclass(frozen=True, slots=True)
class Label:
    """The true value of one prediction row: `request_id` and `row` say which."""

    request_id: str
    row: int
    value: LabelValue
    time: int | None  # ns since the epoch (UTC); None when the source gave none
    source: str  # "topic" | "file" | "feedback"

    @property
    def key(self) -> tuple[str, int]:
        return (self.request_id, self.row)


def _value(v: Any) -> LabelValue:
    if v is None or v == "":
        raise DecodeError("missing_label", "no label value")
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | str):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise DecodeError("non_finite_value", f"label is {v}")
        return v
    raise DecodeError("bad_label", f"label is a {type(v).__name__}, not a scalar")


def _request_id(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if not isinstance(v, str) or not v:
        raise DecodeError("missing_request_id", "no request_id")
    return v


def _row(v: Any) -> int:
    if v is None or v == "":
        return 0
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    raise DecodeError("bad_row", f"row is not a non-negative integer: {v!r}")


def _time(v: Any, fallback: int | None) -> int | None:
    if v is None or v == "":
        return fallback
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
        return seconds_to_ns(v)
    if isinstance(v, str):
        if ":" in v:  # an RFC 3339 time (float() refuses every text with a colon)
            try:
                return parse_rfc3339(v)
            except ValueError as exc:
                raise DecodeError("bad_time", str(exc)) from None
        try:
            t = float(v)
        except ValueError:
            try:
                return parse_rfc3339(v)
            except ValueError as exc:
                raise DecodeError("bad_time", str(exc)) from None
        if math.isfinite(t):
            return seconds_to_ns(v)  # the text's decimal value, exactly
    raise DecodeError("bad_time", f"timestamp is neither RFC 3339 nor epoch seconds: {v!r}")


def _typed_cell(text: str) -> LabelValue | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)  # "nan"/"inf" parse here and are refused by _value
    except ValueError:
        return text


def label_from_object(obj: Any, source: str, fallback_time: int | None = None) -> Label:
    """A label from a parsed record; raises `DecodeError`.

    >>> label_from_object({"request_id": "r1", "label": 2, "timestamp": 10}, "topic")
    Label(request_id='r1', row=0, value=2, time=10000000000, source='topic')
    """
    if not isinstance(obj, dict):
        raise DecodeError("bad_shape", "label record is not a JSON object")
    return Label(
        request_id=_request_id(obj.get("request_id")),
        row=_row(obj.get("row")),
        value=_value(obj.get("label")),
        time=_time(obj.get("timestamp"), fallback_time),
        source=source,
    )


def decode_label_record(
    value: bytes | str, *, fallback_time: int | None = None, coords: SourceCoords | None = None,
) -> Label | DeadLetter:
    """One labels-topic record → a `Label` or a `DeadLetter`.

    >>> decode_label_record(b'{"request_id": "r1", "row": 1, "label": "setosa",'
    ...                     b' "timestamp": "2026-11-01T00:00:05Z"}')
    Label(request_id='r1', row=1, value='setosa', time=1793491205000000000, source='topic')
    >>> decode_label_record(b'{"request_id": "r1", "label": 1}', fallback_time=7).time
    7
    >>> decode_label_record(b'{"request_id": "r1"}').reason
    'missing_label'
    >>> decode_label_record(b'[1]').reason
    'bad_shape'
    """
    raw = value.encode() if isinstance(value, str) else bytes(value)
    try:
        return label_from_object(loads(raw), "topic", fallback_time)
    except DecodeError as exc:
        return DeadLetter(exc.reason, exc.detail, raw, source=coords)
    except Exception as exc:  # a bug must not stop the stream
        return DeadLetter("decoder_error", f"{type(exc).__name__}: {exc}", raw, source=coords)


def _text(line: bytes | str) -> str:
    return line.decode("utf-8", "replace") if isinstance(line, bytes) else line


def decode_label_lines(lines: Iterable[bytes | str], path: str = "") -> _Out:
    """A label file's lines (CSV with a header, or NDJSON) → labels and dead letters.

    >>> out = list(decode_label_lines(["request_id,row,label,timestamp",
    ...                                "r1,0,1,100", "r2,,setosa,", "r3,0,,"], "l.csv"))
    >>> [(x.request_id, x.row, x.value, x.time) for x in out[:2]]
    [('r1', 0, 1, 100000000000), ('r2', 0, 'setosa', None)]
    >>> (out[2].reason, out[2].source.line)
    ('missing_label', 4)
    >>> [x.value for x in decode_label_lines(['{"request_id": "r1", "label": 0.5}'])]
    [0.5]
    """
    it = iter(lines)
    first, n = "", 0
    for line in it:
        n += 1
        first = _text(line).lstrip("\ufeff")
        if first.strip():
            break
    if not first.strip():
        return
    if first.lstrip().startswith("{"):
        yield from _ndjson(first, it, n, path)
    else:
        yield from _csv(first, it, n, path)


def _coords(path: str, line: int) -> SourceCoords:
    return SourceCoords("file", path=path, line=line)


def _ndjson(first: str, rest: _Lines, n: int, path: str) -> _Out:
    line: bytes | str = first
    while True:
        if _text(line).strip():
            raw = line.encode() if isinstance(line, str) else line
            try:
                yield label_from_object(loads(raw), "file")
            except DecodeError as exc:
                yield DeadLetter(exc.reason, exc.detail, raw, source=_coords(path, n))
            except Exception as exc:
                yield DeadLetter("decoder_error", f"{type(exc).__name__}: {exc}", raw,
                                 source=_coords(path, n))
        try:
            line = next(rest)
        except StopIteration:
            return
        n += 1


def _csv(header: str, rest: _Lines, n: int, path: str) -> _Out:
    names = [h.strip().lower() for h in next(csv.reader([header]))]
    if "request_id" not in names or "label" not in names or len(set(names)) != len(names):
        detail = f"CSV header needs request_id and label (and optional row, timestamp): {names}"
        yield DeadLetter("bad_label_header", detail + "; file ignored", header.encode(),
                         source=_coords(path, n))
        return
    for line in rest:
        n += 1
        text = _text(line)
        if not text.strip():
            continue
        raw = text.encode()
        try:
            cells = _csv_cells(text)
            if len(cells) != len(names):
                raise DecodeError("bad_shape", f"{len(cells)} fields, header has {len(names)}")
            obj: dict[str, Any] = dict(zip(names, cells, strict=True))
            obj["label"] = _typed_cell(obj["label"])
            obj["request_id"] = obj["request_id"].strip()
            yield label_from_object(obj, "file")
        except DecodeError as exc:
            yield DeadLetter(exc.reason, exc.detail, raw, source=_coords(path, n))
        except Exception as exc:
            yield DeadLetter("decoder_error", f"{type(exc).__name__}: {exc}", raw,
                             source=_coords(path, n))


def _csv_cells(text: str) -> list[str]:
    """`next(csv.reader([text]))`, split directly when nothing in the line needs the
    CSV parser: no quotes, no carriage return or NUL, at most a final newline."""
    if '"' in text or "\r" in text or "\x00" in text or "\n" in text[:-1]:
        return next(csv.reader([text]))
    line = text[:-1] if text[-1:] == "\n" else text
    return line.split(",") if line else []


def feedback_labels(event: PredictionEvent) -> list[Label | DeadLetter]:
    """A Seldon feedback event's `truth` → one label per row (none without truth).

    >>> from stream.events import ModelRef
    >>> fb = PredictionEvent(EventKind.FEEDBACK, "r1", ModelRef("iris"), 5, truth=[0, [1, 2]])
    >>> out = feedback_labels(fb)
    >>> out[0]
    Label(request_id='r1', row=0, value=0, time=5, source='feedback')
    >>> out[1].reason
    'bad_label'
    """
    if event.kind is not EventKind.FEEDBACK or not event.truth:
        return []
    out: list[Label | DeadLetter] = []
    for i, v in enumerate(event.truth):
        try:
            out.append(Label(event.request_id, i, _value(v), event.event_time, "feedback"))
        except DecodeError as exc:
            out.append(DeadLetter(exc.reason, f"truth row {i}: {exc.detail}", event.raw,
                                  dict(event.headers), event.source))
    return out
