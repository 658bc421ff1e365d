"""Joining delayed ground-truth labels to the predictions they judge.

A `Prediction` is one output row of a successful response: request id, row, who
served it, the request's event time, the id of the window it was counted in
(`stream.windows.WindowKey.id`) and the raw output row. A `Label`
(`stream.decode.labels`) names the same (request id, row). `LabelJoiner` meets the
two in either arrival order and returns a `JoinedLabel` for every meeting; the
window layer attributes it to `prediction.window_id` and, if that window was
already emitted, emits a revision. The joiner decides nothing about windows.

- Key: (request id, row). In a multi-node Seldon graph every node logs its own
  prediction under the same request id; one label joins each node's prediction
  (a prediction is identified by key and `ModelRef`), so every node is judged.
- Duplicates: the first label of a key wins; later ones are counted in
  `duplicate_labels` and ignored, even if their value differs (Seldon logs feedback
  once per graph node; a topic may redeliver). A repeated prediction of the same
  node is ignored the same way (`duplicate_predictions`).
- Horizon: an entry lives while ``watermark <= time + horizon`` (times, watermarks and
  the horizon compared as int ns; the horizon is given in seconds)
  (prediction: its request time; label: its label time or — without one — the
  watermark of the first `expire` after it arrived). `expire(watermark)` drops the
  rest: labels that never met a prediction are returned and counted in
  `unmatched_labels` by source; predictions that never met a label count as
  `unlabelled_predictions`. That is the bound on state; the watermark is event time
  from the driver, never the wall clock.
- Label delay: `JoinedLabel.delay_ns` = label time − prediction time (None without a
  label time); negative delays (clock skew) are kept as they are.
- State lives in an injected mapping of `stream.state` records (`PredictionState`,
  `LabelState`; a dict in replay, a changelogged table in workers); `rebuild_index`
  restores the rest after a restart. The counters in `get()` are this process's.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import msgspec
from msgspec.structs import replace as replace_state

from stream.decode.labels import Label
from stream.events import EventKind, ModelRef, PredictionEvent
from stream.eventtime import seconds_to_ns
from stream.pairs import Pair
from stream.state import LabelState, PredictionState, upgrade
from stream.windows import WindowKey

Key = tuple[str, int]


class Prediction(msgspec.Struct, frozen=True):
    """One predicted row, as the window layer counted it.

    A frozen `msgspec.Struct`, like the event records (`stream.events`): one is built
    per joined label, and a frozen dataclass cost ~1 µs more to construct.
    """

    request_id: str
    row: int
    model: ModelRef
    time: int  # the request's event time, ns since the epoch
    window_id: str  # the window the row counts in: `WindowKey.id`
    output: Any  # the response's output row (class, value or probabilities)
    output_names: tuple[str, ...] | None = None
    # Its input row's segments, ((column, value), ...) (`stream.segments`), or None.
    segment: tuple[tuple[str, str], ...] | None = None

    @property
    def key(self) -> Key:
        return (self.request_id, self.row)

    @staticmethod
    def rows_of(pair: Pair, window: WindowKey) -> list[Prediction]:
        """One prediction per output row of a successful pair.

        >>> m = ModelRef("iris", "ns", "clf", version="v1")
        >>> pair = Pair(m, "r1", 2_500_000_000, 3_000_000_000, outputs=[[0.2, 0.8], [0.9, 0.1]])
        >>> [(p.key, p.output, p.window_id) for p in
        ...  Prediction.rows_of(pair, WindowKey("ns", "iris", "v1", "clf", 0, 60 * 10**9))]
        [(('r1', 0), [0.2, 0.8], 'ns|iris|v1|clf|0'), (('r1', 1), [0.9, 0.1], 'ns|iris|v1|clf|0')]
        """
        if not pair.succeeded or not pair.outputs:
            return []
        return [Prediction(pair.request_id, i, pair.model, pair.request_time, window.id, out,
                           pair.output_names) for i, out in enumerate(pair.outputs)]

    @staticmethod
    def rows_of_response(response: PredictionEvent, time: int, window_id: str
                         ) -> list[Prediction]:
        """One prediction per output row of a successful response event."""
        if response.kind is not EventKind.RESPONSE or response.error is not None:
            return []
        return [Prediction(response.request_id, i, response.model, time, window_id, out,
                           response.output_names) for i, out in enumerate(response.outputs)]


class JoinedLabel(msgspec.Struct, frozen=True):
    """A prediction and its label (a frozen `msgspec.Struct`, as `Prediction`)."""

    prediction: Prediction
    label: Label

    @property
    def delay_ns(self) -> int | None:
        """Label time − prediction time, int ns (None without a label time)."""
        return None if self.label.time is None else self.label.time - self.prediction.time


@dataclass(slots=True)
class JoinStats:
    joined: int = 0
    duplicate_labels: int = 0
    duplicate_predictions: int = 0
    unmatched_labels: Counter = field(default_factory=Counter)  # by label source
    unlabelled_predictions: int = 0
    pending_predictions: int = 0
    pending_labels: int = 0


def _index_add(index: dict, key: Key, skey: str) -> None:
    """`index[key]` gains `skey`: a str while it is the only one, then a set.

    >>> ix = {}
    >>> _index_add(ix, ("r", 0), "p|a"); _index_add(ix, ("r", 0), "p|a"); ix
    {('r', 0): 'p|a'}
    >>> _index_add(ix, ("r", 0), "p|b"); sorted(ix[("r", 0)])
    ['p|a', 'p|b']
    >>> _index_discard(ix, ("r", 0), "p|a"); ix
    {('r', 0): 'p|b'}
    >>> _index_discard(ix, ("r", 0), "p|b"); ix
    {}
    """
    have = index.get(key)
    if have is None:
        index[key] = skey
    elif isinstance(have, str):
        if have != skey:
            index[key] = {have, skey}
    else:
        have.add(skey)


def _index_discard(index: dict, key: Key, skey: str) -> None:
    have = index.get(key)
    if have is None:
        return
    if isinstance(have, str):
        if have == skey:
            del index[key]
        return
    have.discard(skey)
    if len(have) == 1:
        index[key] = next(iter(have))
    elif not have:
        del index[key]


def _pkey(p: Prediction) -> str:
    m = p.model
    return f"p|{p.row}|{m.namespace}|{m.model}|{m.version}|{m.node}|{m.predictor}|{p.request_id}"


def _pstate(p: Prediction, labelled: bool = False) -> PredictionState:
    m = p.model
    return PredictionState(p.time, p.request_id, p.row, m.model, m.namespace, m.node,
                           m.predictor, m.version, p.window_id, p.output, p.output_names,
                           labelled, p.segment)


def _prediction(s: PredictionState) -> Prediction:
    return Prediction(s.request_id, s.row, ModelRef(s.model, s.namespace, s.node, s.predictor,
                                                    s.version),
                      s.time, s.window_id, s.output, s.output_names, s.segment)


def _label(s: LabelState) -> Label:
    return Label(s.request_id, s.row, s.value, s.time, s.source)


def _kind_of(skey: str) -> type:
    return PredictionState if skey.startswith("p|") else LabelState


class JoinState(Protocol):
    """Where a `LabelJoiner` keeps what waits: predictions and labels by store key, which
    predictions a (request id, row) has, the deadlines, and the labels without a time.

    `MemoryJoinState` keeps them in dicts and a heap (replay; the unit tests); a worker
    keeps them on disk (`agents.labelstate.DiskJoinState`, RocksDB), so memory does not
    grow with the label horizon. The joiner's logic is the same on both.
    """

    def get(self, skey: str) -> Any: ...
    def put(self, skey: str, state: Any) -> None: ...  # a new key
    def replace(self, skey: str, state: Any) -> None: ...  # a key that exists
    def delete(self, skey: str) -> None: ...  # a key that exists
    def keys_of(self, key: Key) -> list[str]: ...  # its prediction keys, sorted
    def link(self, key: Key, skey: str) -> None: ...
    def unlink(self, key: Key, skey: str) -> None: ...
    def schedule(self, deadline: int, skey: str) -> None: ...
    def due(self, watermark: float) -> Iterator[tuple[int, str]]: ...  # deadline < watermark
    def add_unanchored(self, skey: str) -> None: ...
    def take_unanchored(self) -> list[str]: ...
    def counts(self) -> tuple[int, int]: ...  # (predictions, labels) waiting


class MemoryJoinState:
    """`JoinState` in memory: the states in a mapping (a dict, or one given: its values
    may be the JSON lists of a changelog, read with `stream.state.upgrade`), the rest in
    a dict and a heap rebuilt from them (`restore`)."""

    def __init__(self, records: MutableMapping[str, Any] | None = None) -> None:
        self.records: MutableMapping[str, Any] = {} if records is None else records
        # (rid, row) → its prediction's store key, or a set of them when several graph
        # nodes or versions predicted the row (a set per row cost ~200 bytes per row held)
        self.by_key: dict[Key, str | set[str]] = {}
        self.heap: list[tuple[int, str]] = []
        self.unanchored: list[str] = []

    def restore(self, horizon_ns: float) -> None:
        upgrade(self.records, _kind_of)
        self.by_key, self.heap, self.unanchored = {}, [], []
        for skey, s in self.records.items():
            if skey.startswith("p|"):
                _index_add(self.by_key, (s.request_id, s.row), skey)
                self.schedule(s.time + horizon_ns, skey)
            elif s.anchor is None:
                self.unanchored.append(skey)
            else:
                self.schedule(s.anchor + horizon_ns, skey)

    def get(self, skey: str) -> Any:
        return self.records.get(skey)

    def put(self, skey: str, state: Any) -> None:
        self.records[skey] = state

    replace = put

    def delete(self, skey: str) -> None:
        del self.records[skey]

    def keys_of(self, key: Key) -> list[str]:
        keys = self.by_key.get(key)
        return [keys] if isinstance(keys, str) else sorted(keys or ())

    def link(self, key: Key, skey: str) -> None:
        _index_add(self.by_key, key, skey)

    def unlink(self, key: Key, skey: str) -> None:
        _index_discard(self.by_key, key, skey)

    def schedule(self, deadline: float, skey: str) -> None:
        if deadline != math.inf:  # an infinite horizon: never due
            heapq.heappush(self.heap, (deadline, skey))  # type: ignore[misc]

    def due(self, watermark: float) -> Iterator[tuple[int, str]]:
        heap, pop = self.heap, heapq.heappop
        while heap and heap[0][0] < watermark:
            yield pop(heap)

    def add_unanchored(self, skey: str) -> None:
        self.unanchored.append(skey)

    def take_unanchored(self) -> list[str]:
        out, self.unanchored = self.unanchored, []
        return out

    def counts(self) -> tuple[int, int]:
        preds = sum(1 for k in self.records if k.startswith("p|"))
        return preds, len(self.records) - preds

    def __len__(self) -> int:
        return len(self.records)


class LabelJoiner:
    """Joins predictions and labels by (request id, row) within a horizon.

    >>> S = 10**9  # times are int ns
    >>> j = LabelJoiner(horizon_seconds=3600)
    >>> m = ModelRef("iris", "prod")
    >>> j.update(Label("r2", 0, 1, 20 * S, "topic"))       # label first: waits
    []
    >>> [x.delay_ns for x in j.update(Prediction("r2", 0, m, 15 * S, "w0", [1]))]
    [5000000000]
    >>> j.update(Prediction("r1", 0, m, 10 * S, "w0", [0]))  # prediction first: waits
    []
    >>> [(x.prediction.window_id, x.label.value)
    ...  for x in j.update(Label("r1", 0, 0, 70 * S, "file"))]
    [('w0', 0)]
    >>> j.update(Label("r1", 0, 1, 80 * S, "file"))        # duplicate: first wins
    []
    >>> j.update(Label("zz", 0, 1, 80 * S, "topic"))
    []
    >>> [x.request_id for x in j.expire(watermark=10_000 * S)]
    ['zz']
    >>> s = j.get(); (s.joined, s.duplicate_labels, dict(s.unmatched_labels), s.pending_labels)
    (2, 1, {'topic': 1}, 0)
    """

    def __init__(self, horizon_seconds: float,
                 store: MutableMapping[str, Any] | None = None,
                 state: JoinState | None = None) -> None:
        """`store`: a mapping for a `MemoryJoinState`; `state`: any other `JoinState`."""
        if not horizon_seconds >= 0:
            raise ValueError(f"horizon_seconds must be >= 0, got {horizon_seconds!r}")
        self.horizon_seconds = float(horizon_seconds)
        # what the int ns times compare with (an infinite horizon stays a float)
        self.horizon_ns = (seconds_to_ns(self.horizon_seconds)
                           if math.isfinite(self.horizon_seconds) else self.horizon_seconds)
        self._state: Any = state if state is not None else MemoryJoinState(store)
        self._stats = JoinStats()
        self._watermark = float("-inf")
        self.rebuild_index()

    def rebuild_index(self) -> None:
        """Re-derive in-memory indexes from stored states (after a restart or rebalance;
        a recovered store's states are read first, `stream.state.upgrade`). A state on
        disk keeps its indexes there: nothing to do."""
        restore = getattr(self._state, "restore", None)
        if restore is not None:
            restore(self.horizon_ns)
        self._watermark = float("-inf")

    def update(self, item: Prediction | Label) -> list[JoinedLabel]:
        """Add a prediction or a label; return the pairs it completes."""
        if isinstance(item, Prediction):
            return self._add_prediction(item)
        if isinstance(item, Label):
            return self._add_label(item)
        raise TypeError(f"expected a Prediction or a Label, got {type(item).__name__}")

    def _add_prediction(self, p: Prediction) -> list[JoinedLabel]:
        state = self._state
        skey = _pkey(p)
        if state.get(skey) is not None:
            self._stats.duplicate_predictions += 1
            return []
        lkey = f"l|{p.row}|{p.request_id}"
        label = state.get(lkey)
        state.put(skey, _pstate(p, labelled=label is not None))
        state.link(p.key, skey)
        state.schedule(p.time + self.horizon_ns, skey)
        if label is None:
            return []
        if not label.joined:
            state.replace(lkey, replace_state(label, joined=True))
        self._stats.joined += 1
        return [JoinedLabel(p, _label(label))]

    def add_pair(self, pair: Pair, window_id: str,
                 segments: list[tuple[tuple[str, str], ...] | None] | None = None
                 ) -> list[JoinedLabel]:
        """`update` with each of `Prediction.rows_of(pair, window)`, without building a
        `Prediction` per row unless it joins (most rows wait for their label).
        `segments`: each output row's segments (`stream.segments.Segmenter.tags`).

        >>> j = LabelJoiner(horizon_seconds=3600)
        >>> _ = j.update(Label("r1", 1, 0, 20 * 10**9, "file"))
        >>> pair = Pair(ModelRef("iris", "ns"), "r1", 15 * 10**9, 15_500_000_000,
        ...             outputs=[[1], [0]])
        >>> [(x.prediction.row, x.prediction.output) for x in j.add_pair(pair, "w0")]
        [(1, [0])]
        >>> j.add_pair(pair, "w0"), j.get().duplicate_predictions
        ([], 2)
        """
        if pair.error_type is not None or not pair.outputs:
            return []
        m = pair.model
        rid, t, names = pair.request_id, pair.request_time, pair.output_names
        middle = f"|{m.namespace}|{m.model}|{m.version}|{m.node}|{m.predictor}|{rid}"
        state, stats = self._state, self._stats
        get, put, link, schedule = state.get, state.put, state.link, state.schedule
        deadline = t + self.horizon_ns
        joined: list[JoinedLabel] = []
        for row, out in enumerate(pair.outputs):
            seg = segments[row] if segments else None
            skey = f"p|{row}{middle}"
            if get(skey) is not None:
                stats.duplicate_predictions += 1
                continue
            lkey = f"l|{row}|{rid}"
            label = get(lkey)
            put(skey, PredictionState(t, rid, row, m.model, m.namespace, m.node, m.predictor,
                                      m.version, window_id, out, names, label is not None,
                                      seg))
            link((rid, row), skey)
            schedule(deadline, skey)
            if label is None:
                continue
            if not label.joined:
                state.replace(lkey, replace_state(label, joined=True))
            stats.joined += 1
            joined.append(JoinedLabel(Prediction(rid, row, m, t, window_id, out, names, seg),
                                      _label(label)))
        return joined

    def _add_label(self, label: Label) -> list[JoinedLabel]:
        state = self._state
        lkey = f"l|{label.row}|{label.request_id}"
        if state.get(lkey) is not None:
            self._stats.duplicate_labels += 1
            return []
        joined = []
        for skey in state.keys_of((label.request_id, label.row)):
            s = state.get(skey)
            if not s.labelled:
                state.replace(skey, replace_state(s, labelled=True))
            joined.append(JoinedLabel(_prediction(s), label))
        state.put(lkey, LabelState(label.time, label.request_id, label.row, label.value,
                                   label.time, label.source, bool(joined)))
        if label.time is None:
            state.add_unanchored(lkey)
        else:
            state.schedule(label.time + self.horizon_ns, lkey)
        self._stats.joined += len(joined)
        return joined

    def expire(self, watermark: float) -> list[Label]:
        """Drop entries older than `watermark − horizon`; return labels that never joined."""
        state = self._state
        self._watermark = max(self._watermark, watermark)
        # Labels without a time are anchored at the first finite watermark (before any
        # event there is none: -inf would expire them at the next call).
        for lkey in state.take_unanchored() if math.isfinite(self._watermark) else ():
            s = state.get(lkey)
            if s is not None and s.anchor is None:
                state.replace(lkey, replace_state(s, anchor=self._watermark))
                state.schedule(self._watermark + self.horizon_ns, lkey)
        unmatched: list[Label] = []
        # Locals: this loop sees every prediction and label once (two per labelled row).
        stats, get, delete = self._stats, state.get, state.delete
        horizon = self.horizon_ns
        for deadline, skey in state.due(self._watermark):
            s = get(skey)
            if skey[0] == "p":  # "p|..." (a prediction) or "l|..." (a label)
                if s is None or s.time + horizon != deadline:
                    continue
                delete(skey)
                state.unlink((s.request_id, s.row), skey)
                if not s.labelled:
                    stats.unlabelled_predictions += 1
                continue
            if s is None or s.anchor is None or s.anchor + horizon != deadline:
                continue
            delete(skey)
            if not s.joined:
                stats.unmatched_labels[s.source] += 1
                unmatched.append(_label(s))
        return unmatched

    def __len__(self) -> int:
        return sum(self._state.counts())

    def get(self) -> JoinStats:
        """Counters so far and the current number of waiting entries."""
        preds, labels = self._state.counts()
        return replace(self._stats, unmatched_labels=Counter(self._stats.unmatched_labels),
                       pending_predictions=preds, pending_labels=labels)
