"""Bounded, seeded uniform sample of a window's rows (Algorithm R, vectorized per batch).

`Reservoir(cap, seed)` decides where each incoming row goes; the caller keeps the
column buffers. Row t (0-based, over the whole window) fills slot t while t < cap, and
afterwards replaces slot r for r drawn uniformly from [0, t] when r < cap. Every row
seen has the same chance cap/seen of being in the sample. Same seed and same batches
give the same sample.

>>> r = Reservoir(cap=3, seed=0)
>>> r.place(2)
(array([0, 1]), array([0, 1]))
>>> dest, src = r.place(5)
>>> r.seen, r.size, r.sampled, bool(set(dest.tolist()) <= {0, 1, 2})
(7, 3, True, True)
"""

from __future__ import annotations

import numpy as np


class Reservoir:
    def __init__(self, cap: int = 50_000, seed: int = 0):
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise ValueError(f"cap must be a positive int, got {cap!r}")
        self.cap = cap
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._seen = 0

    @property
    def seen(self) -> int:
        return self._seen

    @property
    def size(self) -> int:
        return min(self._seen, self.cap)

    @property
    def sampled(self) -> bool:
        return self._seen > self.cap

    def place(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Slots for the next `k` rows: write batch row `src[i]` into slot `dest[i]`."""
        t = np.arange(self._seen, self._seen + k)
        self._seen += k
        direct = t < self.cap
        dest = t.copy()
        late = ~direct
        if late.any():
            dest[late] = self._rng.integers(0, t[late] + 1)
        keep = dest < self.cap
        dest, src = dest[keep], np.flatnonzero(keep)
        # A slot written twice in one batch keeps the later row, as one-by-one would.
        _, last = np.unique(dest[::-1], return_index=True)
        last = len(dest) - 1 - last
        return dest[last], src[last]
