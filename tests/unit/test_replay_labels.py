"""LabelFeed hands out labels exactly as a heap of every label would, in any file order."""

from __future__ import annotations

import heapq
import random

import pytest

from agents import replay_labels
from agents.replay_labels import LabelFeed


@pytest.mark.parametrize("chunk", [replay_labels.SPILL_CHUNK, 7, 1])
def test_label_feed_equals_a_full_heap(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(replay_labels, "SPILL_CHUNK", chunk)
    rng = random.Random(11)
    for case in range(30):
        times = [rng.choice([None, *range(0, 200, 7)]) for _ in range(rng.randint(0, 300))]
        if case % 3 == 0:  # sorted, the usual case
            times = sorted(t for t in times if t is not None) + [None] * times.count(None)
        path = tmp_path / f"labels-{case}.csv"
        lines = ["request_id,row,label,timestamp"]
        for i, t in enumerate(times):
            ts = "" if t is None else f"1970-01-01T00:{t // 60:02d}:{t % 60:02d}Z"
            lines.append(f"r{i},{i % 3},{rng.choice(['0', '1', 'cat', '2.5'])},{ts}")
        path.write_text("\n".join(lines) + "\n")
        heap = []
        for i, t in enumerate(x for x in times if x is not None):
            heapq.heappush(heap, (t * 10**9, i))  # label times: int ns
        timed_ids = [f"r{i}" for i, t in enumerate(times) if t is not None]
        feed = LabelFeed([path])
        marks = sorted(round(rng.uniform(-5, 210) * 10**9) for _ in range(20)) + [float("inf")]
        for mark in marks:
            want = []
            while heap and heap[0][0] <= mark:
                want.append(heapq.heappop(heap))
            assert feed.ready(mark) == bool(want)
            got = [(label.time, label.request_id) for label in feed.until(mark)]
            assert got == [(t, timed_ids[i]) for t, i in want]  # ties in file order
        assert len(feed) == 0
        assert [x.request_id for x in feed.untimed()] == [
            f"r{i}" for i, t in enumerate(times) if t is None]
        feed.close()
