"""`EventBatch`: the decoded records of one Kafka fetch (or block of lines) as columns.

One row per decoded record, in the order of the records given to the decoder (dead
letters left out; `index` says which record each row came from):

- `kind` int8 (`KIND_CODES`: request 0, response 1, feedback 2);
- `request_id` a 1-D object array of str (one str per record, never one per value);
- `model` int32 codes into `models` (`ModelRef`s, in order of first appearance);
- `event_time_ns` int64 nanoseconds since the epoch, exact: the RFC 3339 `time`
  attribute with up to 9 fraction digits, else the Kafka timestamp (ms × 1,000,000);
- `protocol`, `source_format`, `error_type`, `error`, `topic`: int32 codes into the
  lists of the same name (plural), -1 for None (`error_type` / `error` only);
- `reward` float64 (NaN: none; feedback only), `rows` int32 (`PredictionEvent.n_rows`);
- `partition`, `offset` int64 (Kafka coordinates; -1 when the record had none).

The feature, output and truth values are in `groups`, one `ColumnGroup` per (model,
side, column names, width, numeric): `values` is a 2-D array of the group's rows,
`records` the batch rows (ascending) whose rows they are and `offsets` where each one's
rows start (`values[offsets[i]:offsets[i + 1]]` are the rows of record `records[i]`).
A record's rows of one side go to a *numeric* group (float64, every value an int or a
float; bools are not numbers here) or else to an *object* group of the same key (the
values as the decoder gave them: str, bool, None, ...). Rows of unequal lengths (ragged)
go to an object group of width -1 whose `values` is 1-D, one row (a list) per element.
A record without rows of a side is in no group of that side. Groups are ordered by their
first record, then side. What the batch does not keep of a `PredictionEvent`: `raw`,
`headers` and `event_id`.

`BatchBuilder` is the definition: it appends `PredictionEvent`s (what the Python
decoders return). The compiled decoder (native/, `stream.decode.batch`) fills the same
columns for the records it takes; `merge` puts the two parts back in record order.
Deterministic, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from stream.events import EventKind, ModelRef, PredictionEvent

KIND_CODES = {EventKind.REQUEST: 0, EventKind.RESPONSE: 1, EventKind.FEEDBACK: 2}
FEATURES, OUTPUTS, TRUTH = 0, 1, 2  # ColumnGroup.side
INT64_NS = (-(2**63), 2**63)  # event times outside [lo, hi) cannot be held


@dataclass
class ColumnGroup:
    model: int  # code into EventBatch.models
    side: int  # FEATURES | OUTPUTS | TRUTH
    names: tuple[str, ...] | None
    values: np.ndarray  # (rows, width) float64 or object; 1-D object when ragged
    records: np.ndarray  # int64, ascending batch rows
    offsets: np.ndarray  # int64, len(records) + 1

    @property
    def numeric(self) -> bool:
        return self.values.dtype == np.float64

    @property
    def width(self) -> int:
        return self.values.shape[1] if self.values.ndim == 2 else -1

    @property
    def key(self) -> tuple[int, int, tuple[str, ...] | None, int, bool]:
        return (self.model, self.side, self.names, self.width, self.numeric)


_INT8, _INT32, _INT64, _F64 = np.int8, np.int32, np.int64, np.float64
_RECORD_ARRAYS = {  # column -> dtype
    "index": _INT64, "kind": _INT8, "model": _INT32, "event_time_ns": _INT64,
    "protocol": _INT32, "source_format": _INT32, "error_type": _INT32, "error": _INT32,
    "reward": _F64, "rows": _INT32, "topic": _INT32, "partition": _INT64, "offset": _INT64,
}
# coded column -> its dictionary
DICTIONARIES = {"model": "models", "protocol": "protocols", "source_format": "source_formats",
                "error_type": "error_types", "error": "errors", "topic": "topics"}


@dataclass
class EventBatch:
    index: np.ndarray
    kind: np.ndarray
    request_id: np.ndarray
    model: np.ndarray
    event_time_ns: np.ndarray
    protocol: np.ndarray
    source_format: np.ndarray
    error_type: np.ndarray
    error: np.ndarray
    reward: np.ndarray
    rows: np.ndarray
    topic: np.ndarray
    partition: np.ndarray
    offset: np.ndarray
    models: list[ModelRef] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)
    source_formats: list[str] = field(default_factory=list)
    error_types: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    groups: list[ColumnGroup] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.kind)

    @classmethod
    def empty(cls) -> EventBatch:
        arrays: dict[str, Any] = {c: np.empty(0, t) for c, t in _RECORD_ARRAYS.items()}
        return cls(request_id=np.empty(0, object), **arrays)


class _Codes:
    """A dictionary encoding: value -> code, in order of first appearance."""

    def __init__(self) -> None:
        self.codes: dict[Any, int] = {}

    def __call__(self, value: Any) -> int:
        if value is None:
            return -1
        code = self.codes.get(value)
        if code is None:
            code = self.codes[value] = len(self.codes)
        return code

    def values(self) -> list[Any]:
        return list(self.codes)


def _fits_float(v: Any) -> bool:
    if type(v) is float:
        return True
    if type(v) is int:
        try:
            float(v)
        except OverflowError:
            return False
        return True
    return False


_NUMBER_TYPES = frozenset((float, int))


def _shape(rows: list[Any]) -> tuple[int, bool]:
    """(width, numeric) of one record's rows; width -1 when ragged (or not lists)."""
    if {type(r) for r in rows} != {list}:
        return -1, False
    width = len(rows[0])
    if len(rows) > 1 and {len(r) for r in rows} != {width}:
        return -1, False
    types = set(map(type, chain.from_iterable(rows)))
    numeric = types <= _NUMBER_TYPES and (
        int not in types or all(_fits_float(v) for r in rows for v in r))
    return width, numeric


class _GroupRows:
    def __init__(self) -> None:
        self.records: list[int] = []
        self.counts: list[int] = []
        self.rows: list[Any] = []


def _truth_rows(truth: list[Any]) -> list[Any]:
    return [list(t) if isinstance(t, list) else [t] for t in truth]


class BatchBuilder:
    """Append `PredictionEvent`s, then `build()` one `EventBatch` (the definition)."""

    def __init__(self) -> None:
        self._cols: dict[str, list[Any]] = {c: [] for c in _RECORD_ARRAYS}
        self._request_id: list[str] = []
        self._codes = {c: _Codes() for c in DICTIONARIES}
        self._groups: dict[tuple, _GroupRows] = {}

    def add(self, event: PredictionEvent, index: int, event_time_ns: int) -> None:
        """Append `event`, the record at `index` of the decoded list, with its exact time."""
        if not INT64_NS[0] <= event_time_ns < INT64_NS[1]:
            raise ValueError(f"event time {event_time_ns} ns is outside the int64 range")
        row = len(self._request_id)
        codes, cols = self._codes, self._cols
        model = codes["model"](event.model)
        src = event.source
        values = (
            index, KIND_CODES[event.kind], model, event_time_ns,
            codes["protocol"](event.protocol), codes["source_format"](event.source_format),
            codes["error_type"](event.error_type), codes["error"](event.error),
            math.nan if event.reward is None else event.reward, event.n_rows,
            codes["topic"](src.topic if src else None), src.partition if src else -1,
            src.offset if src else -1,
        )
        for column, v in zip(cols.values(), values, strict=True):  # _RECORD_ARRAYS order
            column.append(v)
        self._request_id.append(event.request_id)
        sides = [(FEATURES, event.feature_names, event.rows),
                 (OUTPUTS, event.output_names, event.outputs)]
        if event.truth:
            sides.append((TRUTH, None, _truth_rows(event.truth)))
        for side, names, rows in sides:
            if not rows:
                continue
            width, numeric = _shape(rows)
            key = (model, side, names, width, numeric)
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _GroupRows()
            group.records.append(row)
            group.counts.append(len(rows))
            group.rows.extend(rows)

    def build(self) -> EventBatch:
        arrays: dict[str, Any] = {c: np.array(v, dtype=_RECORD_ARRAYS[c])
                                  for c, v in self._cols.items()}
        request_id = np.empty(len(self._request_id), object)
        request_id[:] = self._request_id
        dictionaries: dict[str, Any] = {DICTIONARIES[c]: codes.values()
                                        for c, codes in self._codes.items()}
        groups = [_group_of(key, g) for key, g in self._groups.items()]
        groups.sort(key=lambda g: (int(g.records[0]), g.side))
        return EventBatch(request_id=request_id, groups=groups, **arrays, **dictionaries)


def _group_of(key: tuple, g: _GroupRows) -> ColumnGroup:
    model, side, names, width, numeric = key
    n = len(g.rows)
    values: np.ndarray
    if numeric:
        values = np.array([float(v) for r in g.rows for v in r] if width else [],
                          dtype=np.float64).reshape(n, width)
    elif width < 0:
        values = np.empty(n, object)
        for i, r in enumerate(g.rows):
            values[i] = r
    else:
        values = np.empty((n, width), object)
        for i, r in enumerate(g.rows):
            for j, v in enumerate(r):
                values[i, j] = v
    offsets = np.zeros(len(g.counts) + 1, np.int64)
    np.cumsum(g.counts, out=offsets[1:])
    return ColumnGroup(model, side, names, values, np.array(g.records, np.int64), offsets)


def merge(parts: Sequence[EventBatch]) -> EventBatch:
    """The parts as one batch in `index` order, dictionaries and groups in order of first
    appearance: what `BatchBuilder` gives for the same events added in that order."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return EventBatch.empty()
    if len(parts) == 1:
        return parts[0]
    index = np.concatenate([p.index for p in parts])
    order = np.argsort(index, kind="stable")
    position = np.empty(len(order), np.int64)
    position[order] = np.arange(len(order))
    out: dict[str, Any] = {}
    for c in _RECORD_ARRAYS:
        out[c] = np.concatenate([getattr(p, c) for p in parts])[order]
    out["request_id"] = np.concatenate([p.request_id for p in parts])[order]
    part_maps: dict[str, list[np.ndarray]] = {}
    for c, d in DICTIONARIES.items():
        union: dict[Any, int] = {}
        maps = [np.array([union.setdefault(v, len(union)) for v in getattr(p, d)] + [-1],
                         np.int64) for p in parts]  # code -1 maps to the last item: -1
        codes = np.concatenate([m[getattr(p, c)] for m, p in zip(maps, parts, strict=True)])
        first = _first_appearance(codes[order], len(union))  # union code -> final code
        out[c] = first[codes[order]].astype(np.int32)
        values = list(union)  # every value is used: each part's dictionary is
        out[d] = [values[u] for u in np.argsort(first[:-1], kind="stable")]
        part_maps[c] = [first[m] for m in maps]
    out["groups"] = _merge_groups(parts, part_maps["model"], position)
    return EventBatch(**out)


def _first_appearance(codes: np.ndarray, n: int) -> np.ndarray:
    """Union code -> code in order of first appearance in `codes`, every one of the n
    codes appearing; length n + 1, its last item -1 (code -1, None, stays -1)."""
    present = codes[codes >= 0]
    uniq, first = np.unique(present, return_index=True)
    out = np.full(n + 1, -1, np.int64)
    out[uniq[np.argsort(first, kind="stable")]] = np.arange(len(uniq))
    return out


def _merge_groups(parts: Sequence[EventBatch], model_maps: list[np.ndarray],
                  position: np.ndarray) -> list[ColumnGroup]:
    chunks: dict[tuple, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    start = 0
    for p, model_map in zip(parts, model_maps, strict=True):
        for g in p.groups:
            key = (int(model_map[g.model]), g.side, g.names, g.width, g.numeric)
            records = position[start + g.records]
            chunks.setdefault(key, []).append((records, np.diff(g.offsets), g.values))
        start += len(p)
    groups = []
    for (model, side, names, _, _), items in chunks.items():
        records = np.concatenate([r for r, _, _ in items])
        counts = np.concatenate([c for _, c, _ in items])
        values = np.concatenate([v for _, _, v in items])
        order = np.argsort(records, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        rows = (np.repeat(starts[order] - np.concatenate([[0], np.cumsum(counts[order])[:-1]]),
                          counts[order]) + np.arange(int(counts.sum())))
        offsets = np.zeros(len(records) + 1, np.int64)
        np.cumsum(counts[order], out=offsets[1:])
        groups.append(ColumnGroup(model, side, names, values[rows], records[order], offsets))
    groups.sort(key=lambda g: (int(g.records[0]), g.side))
    return groups
