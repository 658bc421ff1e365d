"""The processing core both drivers run: events → pairs → windows → summaries.

Two stages, because in a cluster they run on differently keyed partitions:
- `PairingStage` (keyed by request id): pairs requests with responses, resolves what
  the TTL expired, and joins labels with the predictions of the pairs (by request id
  and row, within the label horizon);
- `WindowStage` (keyed by model): files pairs into event-time windows and closes
  them into summaries.
`Pipeline` chains both for the in-process driver (replay); workers run each stage
on its own Kafka topic with changelogged tables as the stores. No I/O, no clock
but the injected one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Hashable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from stream.decode.labels import Label, feedback_labels
from stream.events import DeadLetter, EventKind, PredictionEvent
from stream.eventtime import seconds_to_ns
from stream.labels import JoinedLabel, LabelJoiner
from stream.monitoring import Monitoring
from stream.pairing import Outcome, RequestPairer
from stream.pairs import OrphanResponse, Pair
from stream.segments import Segmenter
from stream.summary import serving_summary
from stream.watermark import Watermark
from stream.window_summary import WindowSummary
from stream.windows import LATE, NEW, WindowBook, WindowKey, WindowKeys

# A hook setting fields of a summary (drift, performance): (key, pairs) -> {field: value}
# (names of `WindowSummary` fields).
SummaryExtension = Callable[[WindowKey, list[Pair]], dict[str, Any]]


def no_reference(key: WindowKey, pairs: list[Pair]) -> dict[str, Any]:
    """Drift and performance placeholders for a model without reference or labels."""
    return {"drift": {"status": "no_reference"}, "prediction_drift": None,
            "performance": {"labels": 0}}


@dataclass
class StepResult:
    pairs: list[Pair] = field(default_factory=list)
    late: list[Pair] = field(default_factory=list)
    orphans: list[OrphanResponse] = field(default_factory=list)
    summaries: list[tuple[WindowKey, WindowSummary]] = field(default_factory=list)
    # Feedback truth rows that are not labels: the driver dead-letters and counts them.
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Labels whose prediction never came within the label horizon (or by the end of input).
    unmatched_labels: list[Label] = field(default_factory=list)

    def extend(self, other: StepResult) -> None:
        self.pairs += other.pairs
        self.late += other.late
        self.orphans += other.orphans
        self.summaries += other.summaries
        self.dead_letters += other.dead_letters
        self.unmatched_labels += other.unmatched_labels


class PairingStage:
    """Stage 1: events in, pair outcomes out; labels in, joined labels out."""

    def __init__(self, pairing_ttl: float, store: MutableMapping[str, list] | None = None,
                 joiner: LabelJoiner | None = None, window_seconds: float = 0.0,
                 segmenter: Segmenter | None = None) -> None:
        """`pairing_ttl`, `window_seconds`: seconds (the settings), converted once to int
        ns. `joiner`: where labels join (none: labels are not joined); a joined
        prediction names its window (`window_seconds`) and, with a `segmenter`
        (`Monitoring.segmenter`), its segments."""
        self.pairer = RequestPairer(seconds_to_ns(pairing_ttl), store)
        self.joiner = joiner
        self.segmenter = segmenter
        if joiner is not None and window_seconds <= 0:
            raise ValueError("a stage that joins labels needs window_seconds > 0")
        self.window_key = (WindowKeys(seconds_to_ns(window_seconds)) if joiner is not None
                           else None)

    def process(self, event: PredictionEvent) -> list[Outcome]:
        if event.kind is EventKind.FEEDBACK:
            return []
        return self.pairer.update(event)

    def expire(self, watermark: float) -> list[Outcome]:
        return self.pairer.expire(watermark)

    def join_pair(self, pair: Pair) -> list[JoinedLabel]:
        """A pair's predicted rows wait for their labels (or join those that came first)."""
        if (self.joiner is None or self.window_key is None or pair.error_type is not None
                or not pair.outputs):
            return []
        segments = self.segmenter.tags(pair) if self.segmenter is not None else None
        return self.joiner.add_pair(pair, self.window_key(pair).id, segments)

    def join_label(self, label: Label) -> list[JoinedLabel]:
        return [] if self.joiner is None else self.joiner.update(label)

    def expire_labels(self, watermark: float) -> list[Label]:
        """Forget what the label horizon passed; returns the labels that never joined."""
        return [] if self.joiner is None else self.joiner.expire(watermark)


class WindowStage:
    """Stage 2: pair outcomes in, late pairs and window summaries out."""

    def __init__(self, window_seconds: float, hold: float,
                 windows: MutableMapping[str, list] | None = None,
                 emitted: MutableMapping[str, int] | None = None,
                 extensions: list[SummaryExtension] | None = None,
                 monitoring: Monitoring | None = None, keep_pairs: bool = False) -> None:
        """`window_seconds`, `hold`: seconds (the settings), converted once to int ns."""
        self.book = WindowBook(seconds_to_ns(window_seconds), seconds_to_ns(hold), windows,
                               emitted, keep_pairs=keep_pairs)
        self.monitoring = monitoring
        if extensions is None:
            extensions = [monitoring.extension] if monitoring is not None else [no_reference]
        self.extensions = extensions

    def add(self, outcome: Outcome, result: StepResult) -> None:
        """File an outcome; a pair seen before (a redelivery) is dropped silently."""
        if isinstance(outcome, OrphanResponse):
            key = self.book.key_of(Pair(outcome.model, outcome.request_id,
                                        outcome.response_time))
            if self.book.add_orphan(key, outcome.request_id):
                result.orphans.append(outcome)
            return
        key = self.book.key_of(outcome)
        status = self.book.add(outcome, key)
        if status == NEW:
            result.pairs.append(outcome)
        elif status == LATE:
            result.late.append(outcome)

    def close_ready(self, watermark: float, result: StepResult) -> None:
        for key, pairs, orphans in self.book.take_ready(watermark):
            self._emit(key, self.summarize(key, pairs, orphans), result)
        self._revise(result, watermark=watermark)
        if self.monitoring is not None:
            self.monitoring.expire(watermark)

    def close_all(self, result: StepResult) -> None:
        for key, pairs, orphans in self.book.take_all():
            self._emit(key, self.summarize(key, pairs, orphans), result)
        self._revise(result, final=True)

    def _emit(self, key: WindowKey, summary: WindowSummary, result: StepResult) -> None:
        result.summaries.append((key, summary))
        if self.monitoring is not None:
            self.monitoring.on_emitted(key, summary)

    def _revise(self, result: StepResult, final: bool = False,
                watermark: float | None = None) -> None:
        if self.monitoring is not None:
            result.summaries += self.monitoring.revisions(final, watermark)

    def summarize(self, key: WindowKey, pairs: list[Pair], orphans: int = 0) -> WindowSummary:
        summary = serving_summary(key, pairs, orphan_responses=orphans)
        for ext in self.extensions:
            summary = msgspec.structs.replace(summary, **ext(key, pairs))
        return summary


@dataclass
class PipelineStores:
    """Where the pipeline keeps its state; dicts by default, Faust tables in workers."""

    pending: MutableMapping[str, list] = field(default_factory=dict)
    windows: MutableMapping[str, list] = field(default_factory=dict)
    emitted: MutableMapping[str, int] = field(default_factory=dict)
    labels: MutableMapping[str, Any] = field(default_factory=dict)  # stage 1's label joins


class Pipeline:
    """Both stages in one process (replay). Durations are given in seconds (the settings);
    event times and watermarks are int ns.

    >>> from stream.events import ModelRef
    >>> p = Pipeline(window_seconds=60, lateness=0, pairing_ttl=5)
    >>> m = ModelRef("iris", "ns", "clf", version="v1")
    >>> _ = p.process(PredictionEvent(EventKind.REQUEST, "r1", m, 10**9, rows=[[1.0]]))
    >>> len(p.process(PredictionEvent(EventKind.RESPONSE, "r1", m, 12 * 10**8,
    ...                               outputs=[[0]])).pairs)
    1
    >>> [s.requests for _, s in p.finish().summaries]
    [1]
    """

    def __init__(self, window_seconds: float, lateness: float, pairing_ttl: float,
                 stores: PipelineStores | None = None,
                 extensions: list[SummaryExtension] | None = None,
                 monitoring: Monitoring | None = None,
                 idle_timeout: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        own_stores = stores is None  # then nothing serializes them: keep Pair objects
        self.stores = stores or PipelineStores()
        # Labels join in stage 1, as in workers (none without monitoring: nothing uses them).
        joiner = (LabelJoiner(monitoring.label_horizon, self.stores.labels)
                  if monitoring is not None else None)
        self.pairing = PairingStage(pairing_ttl, self.stores.pending, joiner, window_seconds,
                                    monitoring.segmenter if monitoring is not None else None)
        self.windows = WindowStage(window_seconds, max(lateness, pairing_ttl),
                                   self.stores.windows, self.stores.emitted, extensions,
                                   monitoring, keep_pairs=own_stores)
        self.monitoring = monitoring
        self.watermark = Watermark(idle_timeout=idle_timeout, clock=clock)

    def process(self, event: PredictionEvent, partition: Hashable = 0) -> StepResult:
        """Feed one event; returns what became final because of it."""
        result = StepResult()
        self.process_into(event, result, partition)
        return result

    def process_into(self, event: PredictionEvent, result: StepResult,
                     partition: Hashable = 0) -> None:
        """`process`, appending to `result` (a driver collecting many events' outcomes
        in one `StepResult` saves building and handling one per event)."""
        self.watermark.update(partition, event.event_time)
        if event.kind is EventKind.FEEDBACK:
            for label in feedback_labels(event):
                if isinstance(label, DeadLetter):
                    result.dead_letters.append(label)
                else:
                    self._joined(self.pairing.join_label(label))
            return
        for outcome in self.pairing.process(event):
            self.windows.add(outcome, result)
            if isinstance(outcome, Pair):  # what a worker's stage 1 sends stage 2 after it
                self._joined(self.pairing.join_pair(outcome))

    def process_label(self, label: Label) -> None:
        """A ground-truth label (labels topic or file); joins its prediction when it can."""
        self._joined(self.pairing.join_label(label))

    def _joined(self, joined: list[JoinedLabel]) -> None:
        if self.monitoring is not None:
            for j in joined:
                self.monitoring.add_joined(j)

    def advance(self) -> StepResult:
        """Expire pairs and close windows up to the current watermark (call per batch)."""
        result = StepResult()
        wm = self.watermark.get()
        for outcome in self.pairing.expire(wm):
            self.windows.add(outcome, result)
        result.unmatched_labels += self.pairing.expire_labels(wm)
        self.windows.close_ready(wm, result)
        return result

    def finish(self) -> StepResult:
        """End of input: resolve everything and close every window (replay).

        Labels still waiting for their prediction will never meet it: they are reported
        as unmatched. (Two expiries: the first anchors labels that have no time at the
        largest finite watermark, the second passes it.)
        """
        result = StepResult()
        for outcome in self.pairing.expire(float("inf")):
            self.windows.add(outcome, result)
        self.windows.close_all(result)
        for watermark in (sys.float_info.max, float("inf")):
            result.unmatched_labels += self.pairing.expire_labels(watermark)
            if self.monitoring is not None:
                self.monitoring.expire(watermark)
        return result
