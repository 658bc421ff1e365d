"""Event-time watermark over several input partitions.

The watermark is the smallest of the per-partition maxima of event time, so a
window is not closed while one partition still lags behind. A partition that has
been idle (by the injected wall clock) longer than `idle_timeout` stops holding the
watermark back — but only if the optional `caught_up(partition)` check agrees that the
consumer has read everything there is: a partition that is merely behind (after a stall
or a restart) is slow, not idle, and still holds the watermark. When the partitions to
expect are known (`expect`), the watermark
waits until each of them has reported, or the idle timeout has passed since they were
expected: a freshly started or rebalanced worker must not run ahead on the first
partition that delivers. Replay uses one partition: the maximum time seen. Event times
are int ns (`stream.eventtime`); the idle timeout and the injected clock are wall-clock
seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class Watermark:
    """
    >>> clock = iter([0, 0, 0, 100, 100]).__next__
    >>> w = Watermark(idle_timeout=30, clock=clock)
    >>> w.update(0, 50.0); w.update(1, 20.0); w.get()
    20.0
    >>> w.update(0, 60.0); w.get()  # partition 1 has been idle for 100 s
    60.0
    >>> w = Watermark(idle_timeout=30, clock=lambda: 0.0)
    >>> w.expect({0, 1}); w.update(0, 50.0); w.get()  # partition 1 has not reported yet
    -inf
    >>> clock = iter([0, 0, 0, 100]).__next__
    >>> w = Watermark(idle_timeout=30, clock=clock, caught_up=lambda p: p != 1)
    >>> w.update(0, 50.0); w.update(1, 20.0); w.get()  # 1 is quiet but behind: it holds
    20.0
    """

    def __init__(self, idle_timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 caught_up: Callable[[Hashable], bool] | None = None) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._caught_up = caught_up
        self._max: dict[Hashable, int] = {}
        self._seen: dict[Hashable, float] = {}
        self._expected: frozenset = frozenset()
        self._expected_since = 0.0

    def expect(self, partitions) -> None:
        """Wait for these partitions before advancing (after an assignment)."""
        partitions = frozenset(partitions)
        if partitions != self._expected:
            self._expected = partitions
            self._expected_since = self._clock()

    def update(self, partition: Hashable, event_time: int) -> None:
        if event_time > self._max.get(partition, float("-inf")):
            self._max[partition] = event_time
        self._seen[partition] = self._clock()

    def max_of(self, partition: Hashable) -> int | None:
        """The largest event time seen on a partition (None before any)."""
        return self._max.get(partition)

    def forget(self, partition: Hashable) -> None:
        """Drop a partition (revoked in a rebalance)."""
        self._max.pop(partition, None)
        self._seen.pop(partition, None)

    def get(self) -> float:
        """The watermark: int ns, or -inf before any event."""
        if not self._max:
            return float("-inf")
        now = self._clock()
        waiting = now - self._expected_since <= self.idle_timeout
        for p in self._expected - self._max.keys():
            if waiting or not self._is_caught_up(p):
                return float("-inf")
        active = [t for p, t in self._max.items()
                  if now - self._seen[p] <= self.idle_timeout or not self._is_caught_up(p)]
        return min(active) if active else max(self._max.values())

    def _is_caught_up(self, partition: Hashable) -> bool:
        return self._caught_up is None or self._caught_up(partition)
