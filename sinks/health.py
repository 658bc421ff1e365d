"""Sink health: which output is failing right now, and how often its writes were retried.

A sink that cannot write retries (backpressure: its stage does not ack the batch); the
driver records each retry here and clears the sink when a flush completes. The worker's
`/readyz` answers 503 while a sink is failing, and `sinks.prometheus` exports
`predlog_sink_up{sink}` and `predlog_sink_retries_total{sink}` from it.

>>> h = SinkHealth()
>>> h.register("elasticsearch")
>>> h.retrying("elasticsearch", ConnectionError("refused"))
>>> h.failing()
{'elasticsearch': 'ConnectionError: refused'}
>>> h.ok("elasticsearch"); h.failing(), h.retries["elasticsearch"]
({}, 1)
"""

from __future__ import annotations

from collections import Counter

MAX_REASON = 300


class SinkHealth:
    def __init__(self) -> None:
        self.sinks: set[str] = set()
        self.retries: Counter[str] = Counter()
        self._failing: dict[str, str] = {}

    def register(self, sink: str) -> None:
        """A sink this driver writes to (exported as up before its first write)."""
        self.sinks.add(sink)

    def retrying(self, sink: str, exc: BaseException) -> None:
        """A write to `sink` failed transiently and is being retried (called per retry)."""
        self.sinks.add(sink)
        self.retries[sink] += 1
        self._failing[sink] = f"{type(exc).__name__}: {exc}"[:MAX_REASON]

    def ok(self, sink: str) -> None:
        """A flush to `sink` completed."""
        self._failing.pop(sink, None)

    def failing(self) -> dict[str, str]:
        """Failing sinks and the last error of each."""
        return dict(self._failing)

    def up(self, sink: str) -> bool:
        return sink not in self._failing
