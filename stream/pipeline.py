"""The processing core both drivers run: events → pairs → windows → summaries.

`Pipeline.process` takes decoded events one at a time (with the partition they
came from, for the watermark) and returns what became final: new pairs (for
counters and prediction documents), late pairs, orphan responses, and window
summaries. Replay feeds it a file; a worker feeds it a Kafka batch and passes
changelogged tables as its stores. No I/O, no clock but the injected one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from stream.events import EventKind, PredictionEvent
from stream.pairing import RequestPairer
from stream.pairs import OrphanResponse, Pair
from stream.summary import serving_summary
from stream.watermark import Watermark
from stream.windows import WindowBook, WindowKey

# A hook adding fields to a summary (drift, performance): (key, pairs) -> dict of fields.
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
    summaries: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: StepResult) -> None:
        self.pairs += other.pairs
        self.late += other.late
        self.orphans += other.orphans
        self.summaries += other.summaries


@dataclass
class PipelineStores:
    """Where the pipeline keeps its state; dicts by default, Faust tables in workers."""

    pending: MutableMapping[str, list] = field(default_factory=dict)
    windows: MutableMapping[str, list] = field(default_factory=dict)
    emitted: MutableMapping[str, float] = field(default_factory=dict)
    orphans: MutableMapping[str, int] = field(default_factory=dict)


class Pipeline:
    """
    >>> from stream.events import ModelRef
    >>> p = Pipeline(window_seconds=60, lateness=0, pairing_ttl=5)
    >>> m = ModelRef("iris", "ns", "clf", version="v1")
    >>> _ = p.process(PredictionEvent(EventKind.REQUEST, "r1", m, 1.0, rows=[[1.0]]))
    >>> len(p.process(PredictionEvent(EventKind.RESPONSE, "r1", m, 1.2, outputs=[[0]])).pairs)
    1
    >>> [s["requests"] for s in p.finish().summaries]
    [1]
    """

    def __init__(self, window_seconds: float, lateness: float, pairing_ttl: float,
                 stores: PipelineStores | None = None,
                 extensions: list[SummaryExtension] | None = None,
                 idle_timeout: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stores = stores or PipelineStores()
        self.pairer = RequestPairer(pairing_ttl, self.stores.pending)
        self.book = WindowBook(window_seconds, max(lateness, pairing_ttl), self.stores.windows,
                               self.stores.emitted)
        self.watermark = Watermark(idle_timeout=idle_timeout, clock=clock)
        self.extensions = extensions if extensions is not None else [no_reference]

    def process(self, event: PredictionEvent, partition: Hashable = 0) -> StepResult:
        """Feed one event; returns what became final because of it."""
        self.watermark.update(partition, event.event_time)
        result = StepResult()
        if event.kind is not EventKind.FEEDBACK:
            self._route(self.pairer.update(event), result)
        return result

    def advance(self) -> StepResult:
        """Expire pairs and close windows up to the current watermark (call per batch)."""
        result = StepResult()
        wm = self.watermark.get()
        self._route(self.pairer.expire(wm), result)
        for key, pairs in self.book.take_ready(wm):
            result.summaries.append(self._summarize(key, pairs))
        return result

    def finish(self) -> StepResult:
        """End of input: resolve everything and close every window (replay)."""
        result = StepResult()
        self._route(self.pairer.expire(float("inf")), result)
        for key, pairs in self.book.take_all():
            result.summaries.append(self._summarize(key, pairs))
        return result

    def _route(self, outcomes: list[Pair | OrphanResponse], result: StepResult) -> None:
        for o in outcomes:
            if isinstance(o, OrphanResponse):
                result.orphans.append(o)
                probe = Pair(o.model, o.request_id, o.response_time)
                wid = self.book.key_of(probe).id
                if not self.book.is_emitted(self.book.key_of(probe)):
                    self.stores.orphans[wid] = self.stores.orphans.get(wid, 0) + 1
            elif self.book.add(o):
                result.pairs.append(o)
            else:
                result.late.append(o)

    def _summarize(self, key: WindowKey, pairs: list[Pair]) -> dict[str, Any]:
        orphans = self.stores.orphans.pop(key.id, 0)
        summary = serving_summary(key, pairs, orphan_responses=orphans)
        for ext in self.extensions:
            summary.update(ext(key, pairs))
        summary["revision"] = 0
        return summary
