"""Per-model event counts: the first, window-less summary of a log."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from stream.events import DeadLetter, EventKind, PredictionEvent


@dataclass(slots=True)
class ModelCounts:
    requests: int = 0
    rows: int = 0
    responses: int = 0
    errors: int = 0
    feedback: int = 0
    first_time: float = float("inf")
    last_time: float = float("-inf")


@dataclass
class EventTally:
    """Counts events per (namespace, model) and dead letters per reason.

    A multi-node Seldon graph logs one request per node under one request id;
    the deployment's request and response counts count each request id once.

    >>> from stream.events import ModelRef
    >>> t = EventTally()
    >>> m = ModelRef("iris", "prod", node="a")
    >>> t.update(PredictionEvent(EventKind.REQUEST, "r1", m, 10.0, rows=[[1], [2]]))
    >>> t.update(PredictionEvent(EventKind.REQUEST, "r1", ModelRef("iris", "prod", node="b"), 10.0,
    ...                          rows=[[1], [2]]))
    >>> t.update(DeadLetter("invalid_json", "x", b"{"))
    >>> (t.get()[("prod", "iris")].requests, t.get()[("prod", "iris")].rows, t.dead_letters)
    (1, 2, Counter({'invalid_json': 1}))
    """

    models: dict[tuple[str, str], ModelCounts] = field(default_factory=dict)
    dead_letters: Counter = field(default_factory=Counter)
    _seen_requests: set[tuple[str, ...]] = field(default_factory=set, repr=False)

    def update(self, item: PredictionEvent | DeadLetter) -> None:
        if isinstance(item, DeadLetter):
            self.dead_letters[item.reason] += 1
            return
        key = (item.model.namespace, item.model.model)
        counts = self.models.get(key)
        if counts is None:
            counts = self.models[key] = ModelCounts()
        counts.first_time = min(counts.first_time, item.event_time)
        counts.last_time = max(counts.last_time, item.event_time)
        if item.kind is EventKind.REQUEST:
            rid = (*key, item.request_id)
            if rid not in self._seen_requests:
                self._seen_requests.add(rid)
                counts.requests += 1
                counts.rows += len(item.rows)
        elif item.kind is EventKind.RESPONSE:
            rid = (*key, item.request_id, "response")
            if rid not in self._seen_requests:
                self._seen_requests.add(rid)
                counts.responses += 1
                if item.error is not None:
                    counts.errors += 1
        else:
            counts.feedback += 1

    def get(self) -> dict[tuple[str, str], ModelCounts]:
        return dict(sorted(self.models.items()))
