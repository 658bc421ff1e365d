"""The replay's label files, handed out by label time without holding them all in memory.

A replay feeds each timed label once the input has reached its time, in (time, file
order) order; labels without a time come at the end, in file order. Holding every
decoded label until then made a replay's memory grow with its labels (~250 bytes
each). `LabelFeed` decodes the files once, keeps per timed label only its time (8
bytes, in an array) and spills the label itself to an unnamed temporary file, pickled
in chunks of `SPILL_CHUNK` (one pickle record per label cost more than decoding it);
while the replay runs it reads the spill file just far enough ahead: label `i` is
handed to the heap once the watermark reaches the smallest time of labels `i..` (a
suffix minimum), so every label with time <= the watermark has been read whatever the
file's order, and a time-sorted file (the usual case) keeps next to nothing in memory
(at most one chunk read ahead).

>>> import tempfile, os
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> _ = (d / "l.csv").write_text("request_id,row,label,timestamp\\n"
...     "r2,0,1,1970-01-01T00:00:20Z\\nr1,0,0,1970-01-01T00:00:10Z\\nr3,0,1,\\nr4,0,x,bad\\n")
>>> feed = LabelFeed([d / "l.csv"])
>>> [x.reason for x in feed.dead_letters], len(feed)
(['bad_time'], 2)
>>> [(x.request_id, x.time) for x in feed.until(15 * 10**9)], list(feed.until(15 * 10**9))
([('r1', 10000000000)], [])
>>> [x.request_id for x in feed.until(float("inf"))], [x.request_id for x in feed.untimed()]
(['r2'], ['r3'])
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from array import array
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from stream.decode.labels import Label, decode_label_lines
from stream.events import DeadLetter

SPILL_CHUNK = 256  # labels per pickled record: read ahead at most this many


class LabelFeed:
    def __init__(self, paths: list[Path]) -> None:
        self.dead_letters: list[DeadLetter] = []
        self._untimed: list[Label] = []
        self._spill = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        times = array("q")  # int ns, 8 bytes a label, no int object each
        chunk: list[tuple] = []
        dump = pickle.Pickler(self._spill, protocol=pickle.HIGHEST_PROTOCOL)
        for path in paths:
            with open(path, "rb") as fh:
                for item in decode_label_lines(fh, str(path)):
                    if isinstance(item, DeadLetter):
                        self.dead_letters.append(item)
                    elif item.time is None:
                        self._untimed.append(item)
                    else:
                        times.append(item.time)
                        chunk.append((item.request_id, item.row, item.value, item.time,
                                      item.source))
                        if len(chunk) == SPILL_CHUNK:
                            dump.dump(chunk)
                            dump.clear_memo()
                            chunk = []
        if chunk:
            dump.dump(chunk)
        self._spill.seek(0)
        # One Unpickler per chunk: an Unpickler's memo keeps everything it ever loaded.
        self._load = partial(pickle.load, self._spill)
        self._chunk: list[tuple] = []
        self._chunk_at = 0
        self._n = len(times)
        # ready[i]: the smallest time of labels i.. (read label i once the watermark is there)
        arr = np.frombuffer(times, dtype=np.int64)
        ready = np.minimum.accumulate(arr[::-1])[::-1] if len(arr) else arr
        self._ready = array("q", ready.tobytes())  # indexing an array gives ints
        del times, arr, ready
        self._next = 0
        self._next_ready = self._ready[0] if self._n else float("inf")
        self._heap: list[tuple[int, int, Label]] = []

    def __len__(self) -> int:
        """Timed labels not handed out yet."""
        return self._n - self._next + len(self._heap)

    def ready(self, watermark: float) -> bool:
        """Whether `until(watermark)` would hand out a label (cheap: called per event)."""
        return (self._next < self._n and self._next_ready <= watermark) or bool(self._heap and
                                                     self._heap[0][0] <= watermark)

    def until(self, watermark: float) -> Iterator[Label]:
        """The timed labels with time <= watermark not handed out yet, by (time, file order)."""
        heap = self._heap
        while self._next < self._n and self._next_ready <= watermark:
            if self._chunk_at == len(self._chunk):
                self._chunk, self._chunk_at = self._load(), 0
            label = Label(*self._chunk[self._chunk_at])
            self._chunk_at += 1
            heapq.heappush(heap, (label.time, self._next, label))
            self._next += 1
            if self._next < self._n:
                self._next_ready = self._ready[self._next]
        while heap and heap[0][0] <= watermark:
            yield heapq.heappop(heap)[2]

    def untimed(self) -> list[Label]:
        """Labels without a time, in file order (the replay feeds them at the end)."""
        return self._untimed

    def close(self) -> None:
        self._spill.close()
