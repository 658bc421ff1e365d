"""The serving part of a window summary, computed from the window's pairs.

Pure and order-independent: the same pairs give the same summary, byte for byte,
whatever order they arrived in (`WindowBook.take` sorts them).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from stream.eventtime import format_utc
from stream.pairs import NO_RESPONSE, Pair
from stream.window_summary import WindowSummary
from stream.windows import WindowKey

QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
# Exact cell types (`type(v)`, so never a subclass such as bool) for column fast paths:
NUMBER_TYPES = frozenset((int, float))  # every value is a number
TEXT_TYPES = frozenset((str, type(None)))  # no value is a number
# A row wider than this is not profiled per feature (an image or embedding tensor, or a
# hostile payload): 65,000 columns made a 3.4 MB summary that no Kafka producer took.
MAX_FEATURE_COLUMNS = 1000


def latency_summary(latencies_ns: list[int]) -> dict[str, float | None]:
    """Quantiles, mean and max of int ns latencies, in float seconds.

    The definition, which the oracle tests hold it to with `==`: over `lat_ns`, the
    int64 array of the latencies (response time − request time, int ns, as logged),
    pN = `np.percentile(lat_ns, N) / 1e9` (numpy's default linear method),
    mean = `np.mean(lat_ns) / 1e9`, max = `np.max(lat_ns) / 1e9`. Nothing is rounded:
    float seconds appear only in this output.

    >>> latency_summary([100_000_000, 200_000_000, 300_000_000, 400_000_000])
    {'p50': 0.25, 'p95': 0.38499999999999995, 'p99': 0.397, 'mean': 0.25, 'max': 0.4}
    >>> latency_summary([])["p95"] is None
    True
    """
    if not latencies_ns:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    lat_ns = np.asarray(latencies_ns, dtype=np.int64)
    qs = np.percentile(lat_ns, [q * 100 for _, q in QUANTILES])
    out: dict[str, float | None] = {
        name: float(v / 1e9) for (name, _), v in zip(QUANTILES, qs, strict=True)}
    out["mean"] = float(np.mean(lat_ns) / 1e9)
    out["max"] = float(np.max(lat_ns) / 1e9)
    return out


def feature_names_for(pair: Pair, width: int, schema: tuple[str, ...] | None) -> tuple[str, ...]:
    """Payload names, else the reference schema's column order, else f0..fn."""
    if pair.feature_names is not None and len(pair.feature_names) == width:
        return pair.feature_names
    if schema is not None and len(schema) == width:
        return schema
    return tuple(f"f{i}" for i in range(width))


def _extend_columns(columns: dict[str, list[float]], names: tuple[str, ...] | None,
                    rows: list[list]) -> None:
    """Append the numeric values of equal-width `rows` to their columns, column by column
    (each column still gets its values in row order)."""
    assert names is not None  # a batch of rows always has its names
    for name, col in zip(names, zip(*rows, strict=True), strict=True):
        types = set(map(type, col))
        if NUMBER_TYPES.issuperset(types):  # the usual case, at C speed
            vals = list(map(float, col))
        elif TEXT_TYPES.issuperset(types):  # a text column: no numeric value
            vals = []
        else:
            vals = [float(v) for v in col
                    if isinstance(v, int | float) and not isinstance(v, bool)]
        if vals:
            columns.setdefault(name, []).extend(vals)


def feature_stats(pairs: list[Pair], schema: tuple[str, ...] | None = None) -> dict[str, dict]:
    """mean/std/min/max of each numeric feature over every logged input row (rows of at
    most `MAX_FEATURE_COLUMNS` values).

    >>> from stream.events import ModelRef
    >>> m = ModelRef("m")
    >>> wide = Pair(m, "r2", 0.0, 0.1, rows=[[1.0] * (MAX_FEATURE_COLUMNS + 1)])
    >>> sorted(feature_stats([Pair(m, "r1", 0.0, 0.1, ("a", "b"), [[1.0, 3.0]]), wide]))
    ['a', 'b']
    """
    columns: dict[str, list[float]] = {}
    # Consecutive pairs with the same distinct names and equal-width rows are transposed
    # together; anything else goes cell by cell, in order.
    batch_names: tuple[str, ...] | None = None
    batch: list[list] = []
    for p in pairs:
        rows = p.rows
        if not rows:
            continue
        width = len(rows[0])
        if width > MAX_FEATURE_COLUMNS:
            rows = [r for r in rows if len(r) <= MAX_FEATURE_COLUMNS]
            if not rows:
                continue
            width = len(rows[0])
        names = feature_names_for(p, width, schema)
        if (len(rows) == 1 or all(len(r) == width for r in rows)) and (
                names == batch_names or len(set(names)) == width):
            if names != batch_names:
                if batch:
                    _extend_columns(columns, batch_names, batch)
                batch_names, batch = names, []
            batch.extend(rows)
            continue
        if batch:
            _extend_columns(columns, batch_names, batch)
        batch_names, batch = None, []
        for row in rows:
            if len(row) > MAX_FEATURE_COLUMNS:
                continue
            names = feature_names_for(p, len(row), schema)
            for name, v in zip(names, row, strict=False):
                if isinstance(v, int | float) and not isinstance(v, bool):
                    columns.setdefault(name, []).append(float(v))
    if batch:
        _extend_columns(columns, batch_names, batch)
    out = {}
    for name in sorted(columns):
        arr = np.asarray(columns[name])
        out[name] = {"mean": round(float(arr.mean()), 12), "std": round(float(arr.std()), 12),
                     "min": float(arr.min()), "max": float(arr.max())}
    return out


def serving_counts(pairs: list[Pair]) -> dict[str, int]:
    """Requests, input rows, predicted rows and errors of a window's pairs (or of one
    segment's: `stream.segments`).

    >>> from stream.events import ModelRef
    >>> m = ModelRef("m")
    >>> serving_counts([Pair(m, "r1", 0, 1, None, [[1], [2]], None, [[0], [1]]),
    ...                 Pair(m, "r2", 0, 1, None, [[3]], error_type="server_error")])
    {'requests': 2, 'rows': 3, 'predictions': 2, 'errors': 1}
    """
    rows = predictions = errors = 0
    for p in pairs:
        n = p.n_rows
        rows += n
        if p.error_type is None:
            predictions += n if n else len(p.outputs or ())
        else:
            errors += 1
    return {"requests": len(pairs), "rows": rows, "predictions": predictions, "errors": errors}


def serving_summary(key: WindowKey, pairs: list[Pair], *, orphan_responses: int = 0,
                    schema: tuple[str, ...] | None = None) -> WindowSummary:
    """The window summary's serving fields (DESIGN.md "Window summary"); drift and
    performance are left at their no-reference placeholders for the extensions to set."""
    errors: Counter[str] = Counter()
    latencies: list[int] = []
    unpaired = 0
    sizes: list[int] = []
    for p in pairs:
        sizes.append(p.n_rows)
        if p.error_type is not None:
            errors[p.error_type] += 1
            if p.error_type == NO_RESPONSE:
                unpaired += 1
        lat = p.latency_ns
        if lat is not None:
            latencies.append(lat)
    counts = serving_counts(pairs)
    return WindowSummary(
        model=key.model,
        version=key.version,
        namespace=key.namespace,
        node=key.node,
        window_start=format_utc(key.start),
        window_end=format_utc(key.end),
        requests=counts["requests"],
        rows=counts["rows"],
        predictions=counts["predictions"],
        errors=counts["errors"],
        error_types=dict(sorted(errors.items())),
        unpaired_requests=unpaired,
        orphan_responses=orphan_responses,
        latency_seconds=latency_summary(latencies),
        input_size={"mean": round(float(np.mean(sizes)), 12) if sizes else None,
                    "max": max(sizes) if sizes else None},
        feature_stats=feature_stats(pairs, schema),
    )
