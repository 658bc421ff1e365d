"""Segments: a window's numbers again per value of a segment column.

A segment column is a categorical input feature named in the settings
(`PREDLOG_SEGMENT_COLUMNS`, replay `--segment`). Every logged input row is in the segment
of its value of that column (the value as text, `segment_text`; a row without the column
is in `__missing__`), and its prediction (output row i of input row i) goes with it; a
request whose rows have several values is in several segments, with those rows. A
request without input rows is in `__missing__`; output rows beyond the input rows are in
no segment.

Per window and column the values are ranked by input rows (then requests, then by value);
the first `top_k` keep their own entry and the rest are merged into `__other__`, so a
column with thousands of values still gives at most top_k + 1 entries (and Prometheus
series). The split itself (`split`) gives, per kept value, the window's pairs cut down to
that value's rows: every statistic of a segment is the window's statistic of those pairs,
by the same code.

Deterministic, no I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from stream.pairs import Pair

OTHER = "__other__"
MISSING = "__missing__"

SchemaOf = Callable[[str], "tuple[str, ...] | None"]


def segment_text(value: Any) -> str:
    """A cell as a segment value: text as it is, a whole number without a fraction (a
    category logged as 3 or 3.0 is one segment), other numbers as Python writes them,
    booleans as JSON does; anything else (null, a list) is `__missing__`.

    >>> [segment_text(v) for v in ("EWR", 3, 3.0, 2.5, True, None, [1])]
    ['EWR', '3', '3', '2.5', 'true', '__missing__', '__missing__']
    """
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return MISSING


Tag = tuple[tuple[str, str], ...]  # a prediction's segments: ((column, value), ...)


class Segmenter:
    """Which segment of each configured column every row of a pair is in.

    A column is found by the pair's feature names, else by the model's reference schema
    (`schema_of(model)`, for payloads without names), as the window's feature statistics
    find it. Output row i is in the segments of input row i; output rows beyond the input
    rows are in no segment (a request without input rows: all its outputs are in
    `__missing__`).

    >>> from stream.events import ModelRef
    >>> seg = Segmenter(("origin",))
    >>> pair = Pair(ModelRef("m"), "r1", 0, 1, ("origin", "x"), [["JFK", 1.0], ["EWR", 2.0]],
    ...             None, [[0], [1], [1]])
    >>> seg.rows(pair), seg.outputs(pair)
    ([('JFK',), ('EWR',)], [('JFK',), ('EWR',), None])
    >>> seg.tags(pair)
    [(('origin', 'JFK'),), (('origin', 'EWR'),), None]
    """

    def __init__(self, columns: Sequence[str], schema_of: SchemaOf | None = None) -> None:
        if len(set(columns)) != len(columns):
            raise ValueError(f"segment columns repeat: {list(columns)}")
        self.columns = tuple(columns)
        self._schema_of = schema_of or (lambda model: None)

    def _indices(self, pair: Pair) -> list[int | None]:
        rows = pair.rows
        width = len(rows[0]) if rows else 0
        names = pair.feature_names
        if names is None or len(names) != width:
            names = self._schema_of(pair.model.model)
        if names is None or len(names) != width:
            return [None] * len(self.columns)
        return [names.index(c) if c in names else None for c in self.columns]

    def rows(self, pair: Pair) -> list[tuple[str, ...]]:
        """Per input row, its value of each column."""
        rows = pair.rows
        if not rows:
            return []
        indices = self._indices(pair)
        return [tuple(segment_text(row[i]) if i is not None and i < len(row) else MISSING
                      for i in indices) for row in rows]

    def outputs(self, pair: Pair, rows: list[tuple[str, ...]] | None = None
                ) -> list[tuple[str, ...] | None]:
        """Per output row, the segments of its input row (None beyond them); `rows`:
        `self.rows(pair)`, if known."""
        outputs = pair.outputs or ()
        if not outputs:
            return []
        if rows is None:
            rows = self.rows(pair)
        if not rows:
            return [(MISSING,) * len(self.columns)] * len(outputs)
        return [rows[i] if i < len(rows) else None for i in range(len(outputs))]

    def tags(self, pair: Pair) -> list[Tag | None]:
        """Per output row, its segments by column name: what stage 1 stores with a
        prediction waiting for its label (names, so a restart with the columns in
        another order or changed still files each label under its own column)."""
        return [None if seg is None else tuple(zip(self.columns, seg, strict=True))
                for seg in self.outputs(pair)]


def rank(counts: Counter, requests: Counter, top_k: int) -> list[str]:
    """The values that keep their own entry: the `top_k` with the most rows (then
    requests, then by value).

    >>> rank(Counter({"a": 5, "b": 9, "c": 5}), Counter({"a": 1, "b": 1, "c": 2}), 2)
    ['b', 'c']
    """
    order = sorted(set(counts) | set(requests),
                   key=lambda v: (-counts[v], -requests[v], v))
    return order[:top_k]


def _sub_pair(pair: Pair, rows: list[int], outputs: list[int]) -> Pair:
    """`pair` with only the input rows and output rows at these indices."""
    return Pair(pair.model, pair.request_id, pair.request_time, pair.response_time,
                pair.feature_names, [pair.rows[i] for i in rows] if pair.rows else pair.rows,
                pair.output_names,
                [pair.outputs[i] for i in outputs] if pair.outputs else pair.outputs,
                pair.error_type, pair.error, pair.entry)


def split(pairs: list[Pair], segmenter: Segmenter, top_k: int
          ) -> dict[str, dict[str, list[Pair]]]:
    """Per column, per kept value (and `__other__`), the window's pairs cut down to the
    rows of that value, in the window's pair order. A request without input rows is in
    `__missing__` as a whole; output rows beyond the input rows are left out (in no
    segment, as in `Segmenter.outputs`).

    >>> from stream.events import ModelRef
    >>> m = ModelRef("m")
    >>> ps = [Pair(m, "r1", 0, 1, ("c",), [["a"], ["b"]], None, [[0], [1], [1]]),
    ...       Pair(m, "r2", 0, 1, ("c",), [["a"]], None, [[1]]),
    ...       Pair(m, "r3", 0, 1, ("c",), [["z"]], None, [[0]])]
    >>> out = split(ps, Segmenter(("c",)), top_k=1)["c"]
    >>> for v, sub in out.items():
    ...     print(v, [(p.request_id, p.rows, p.outputs) for p in sub])
    a [('r1', [['a']], [[0]]), ('r2', [['a']], [[1]])]
    __other__ [('r1', [['b']], [[1]]), ('r3', [['z']], [[0]])]
    """
    per_pair = []
    for p in pairs:
        in_segs = segmenter.rows(p)
        per_pair.append((in_segs, segmenter.outputs(p, in_segs)))
    out: dict[str, dict[str, list[Pair]]] = {}
    for c, column in enumerate(segmenter.columns):
        rows, requests = Counter[str](), Counter[str]()
        for in_segs, _ in per_pair:
            rows.update(s[c] for s in in_segs)
            requests.update({s[c] for s in in_segs} or {MISSING})
        kept = rank(rows, requests, top_k)
        keep = set(kept)
        groups: dict[str, list[Pair]] = {v: [] for v in kept}
        for p, (in_segs, out_segs) in zip(pairs, per_pair, strict=True):
            if not in_segs:  # no input rows: the whole request
                groups.setdefault(MISSING if MISSING in keep else OTHER, []).append(p)
                continue
            where_in: dict[str, list[int]] = {}
            where_out: dict[str, list[int]] = {}
            for i, s in enumerate(in_segs):
                where_in.setdefault(s[c] if s[c] in keep else OTHER, []).append(i)
            for i, seg in enumerate(out_segs):
                if seg is not None:
                    where_out.setdefault(seg[c] if seg[c] in keep else OTHER, []).append(i)
            for v in sorted(where_in, key=lambda v: (v == OTHER, v)):
                groups.setdefault(v, []).append(_sub_pair(p, where_in[v], where_out.get(v, [])))
        out[column] = groups
    return out


def kept_value(value: str, kept: set[str]) -> str:
    """The entry a value counts in, given a window's kept values.

    >>> kept_value("a", {"a"}), kept_value("b", {"a"})
    ('a', '__other__')
    """
    return value if value in kept else OTHER
