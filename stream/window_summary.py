"""The window summary record (DESIGN.md "Window summary"): what the window stage emits and
every driver and sink reads.

One `WindowSummary` per model, version, node and window, and again, with `revision` n,
when late labels change its performance. Its serialized form is its `to_builtins()` dict
(JSON with sorted keys in windows.jsonl and on the windows topic, the Elasticsearch
document, the worker's summaries table); `from_builtins` reads that back, including what
older versions wrote (a field they lacked takes its default; a key this version does not
know is dropped).

The fields the drivers and sinks read across modules are typed. The sub-records stay
dicts, built by their one producer and carried through as they are:
- `drift` (`stream.drift.window.WindowDrift.get`): the dataset drift
  (`dataset_drift`, `drift_share`, `number_of_drifted_columns`, `features`) or a
  `status` (`no_reference`, `insufficient_data`, ...) with details — variants whose
  keys a tagged union could only describe by adding a tag field to the output;
- `prediction_drift`: `{"stattest", "score", "threshold", "drift"}` or None;
- `performance` (`stream.performance.WindowPerformance.get`): keys by task
  (classifier, regressor) plus `labels`, `label_coverage`, label delays;
- `segments`: per segment column and value, the same serving counts, drift and
  performance sub-records (`stream.monitoring.Monitoring`, `stream.segments`);
- `latency_seconds`, `input_size`, `feature_stats`, `error_types`, `early_warnings`:
  fixed small maps whose numbers must keep their JSON type (an int stays an int).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class WindowSummary(msgspec.Struct, kw_only=True, frozen=True):
    """A window's summary. Field order is the serialized key order (kept from the dicts
    predlog emitted before; the JSON outputs sort keys anyway)."""

    model: str
    version: str
    namespace: str
    node: str = ""
    window_start: str  # ISO-8601 UTC, [start, end) by request event time
    window_end: str
    requests: int
    rows: int
    predictions: int
    errors: int
    error_types: dict[str, int] = {}
    unpaired_requests: int = 0
    orphan_responses: int = 0
    latency_seconds: dict[str, float | None] = {}  # p50, p95, p99, mean, max
    input_size: dict[str, float | int | None] = {}  # mean, max rows per request
    feature_stats: dict[str, dict[str, float]] = {}  # feature → mean, std, min, max
    drift: dict[str, Any] = msgspec.field(default_factory=lambda: {"status": "no_reference"})
    prediction_drift: dict[str, Any] | None = None
    early_warnings: dict[str, bool] | UnsetType = UNSET  # only with a reference
    # The reference drift compared with ({"source": "file" | "mlflow" | "bootstrap", ...,
    # "rows"}); only with one.
    reference: dict[str, Any] | UnsetType = UNSET
    performance: dict[str, Any] = msgspec.field(default_factory=lambda: {"labels": 0})
    # Per segment column, per value (the top K by rows, then "__other__"): requests, rows,
    # predictions, errors, drift, prediction_drift, performance (`stream.segments`);
    # only with segment columns configured.
    segments: dict[str, dict[str, dict[str, Any]]] | UnsetType = UNSET
    revision: int = 0

    def to_builtins(self) -> dict[str, Any]:
        """The serialized form: a dict of JSON types (no `early_warnings`, `reference` or
        `segments` when unset).

        >>> s = WindowSummary(model="m", version="1", namespace="ns", node="n",
        ...                   window_start="2026-01-01T00:00:00Z",
        ...                   window_end="2026-01-01T00:05:00Z", requests=1, rows=1,
        ...                   predictions=1, errors=0)
        >>> WindowSummary.from_builtins(s.to_builtins()) == s
        True
        >>> "early_warnings" in s.to_builtins()
        False
        """
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    @classmethod
    def from_builtins(cls, value: Any) -> WindowSummary:
        """A summary from its serialized form (a dict, e.g. read back from a table)."""
        return msgspec.convert(value, cls)

    @classmethod
    def from_json(cls, data: bytes | str) -> WindowSummary:
        """A summary from one JSON document (a windows.jsonl line, a windows topic value)."""
        return msgspec.json.decode(data, type=cls)
