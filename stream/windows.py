"""Event-time tumbling windows per model, version and graph node.

A pair belongs to the window of its *request* time. A window is ready when the
watermark passes its end plus the hold (the allowed lateness, and at least the
pairing TTL, so every request in it is answered or known unanswered). It is then
taken out exactly once; a pair that arrives for a window already taken is late
and reported as such. Pairs are stored under `<window id>|<request id>|<node>`, so
replaying the same pair (after a restart) changes nothing. State lives in injected
mappings (dicts in replay, changelogged Faust tables in workers). Window bounds, sizes,
holds and watermarks are int ns (`stream.eventtime`); a window's text id names its start
in seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from stream.eventtime import NS, seconds_to_ns
from stream.pairs import Pair
from stream.state import OrphanMark, PairState, upgrade

NEW, DUPLICATE, LATE = "new", "duplicate", "late"
ORPHAN = "~orphan~"  # prefix of the request id of an orphan response's key


def _kind_of(skey: str) -> type:
    """What a window store key holds: an orphan's mark or a pair."""
    return OrphanMark if skey.split("|", 6)[5].startswith(ORPHAN) else PairState


@dataclass(frozen=True, slots=True)
class WindowKey:
    namespace: str
    model: str
    version: str
    node: str
    start: int  # ns since the epoch
    size: int  # ns
    # `id`, once computed (not part of the key: no init, compare, hash or repr)
    _id: str = field(default="", init=False, repr=False, compare=False)

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def id(self) -> str:
        """A stable text id, also the document id of the summary.

        >>> WindowKey("ns", "iris", "v1", "clf", 600 * NS, 300 * NS).id
        'ns|iris|v1|clf|600'
        >>> WindowKey("ns", "iris", "v1", "clf", 600_500_000_000, 500_000_000).id
        'ns|iris|v1|clf|600.5'
        """
        wid = self._id
        if not wid:
            whole, sub = divmod(self.start, NS)  # seconds, as a float start always printed
            start = str(whole) if not sub else repr(self.start / NS)
            wid = f"{self.namespace}|{self.model}|{self.version}|{self.node}|{start}"
            object.__setattr__(self, "_id", wid)  # frozen: a cache, not a change
        return wid

    @classmethod
    def parse(cls, wid: str, size: int) -> WindowKey:
        """The key of a window id (`size`: int ns).

        >>> k = WindowKey("ns", "iris", "v1", "clf", 600_500_000_000, 500_000_000)
        >>> WindowKey.parse(k.id, k.size) == k
        True
        """
        ns, model, version, node, start = wid.rsplit("|", 4)
        return cls(ns, model, version, node, seconds_to_ns(start), size)


class WindowKeys:
    """`window_key(pair, size)`, the same object for the pairs of one window: built, and
    its `id` computed, once (the last 4,096 windows are remembered).

    >>> from stream.events import ModelRef
    >>> keys = WindowKeys(60 * NS)
    >>> m = ModelRef("iris", "ns")
    >>> keys(Pair(m, "r1", 61 * NS)) is keys(Pair(m, "r2", 119 * NS))
    True
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: dict[tuple, WindowKey] = {}

    def __call__(self, pair: Pair) -> WindowKey:
        memo = (pair.model, pair.request_time // self.size)
        key = self._keys.get(memo)
        if key is None:
            if len(self._keys) >= 4096:
                self._keys.clear()
            key = self._keys[memo] = window_key(pair, self.size)
        return key


def window_key(pair: Pair, size: int) -> WindowKey:
    """The window a pair counts in: its model, version, node and request time (`size`:
    int ns).

    >>> from stream.events import ModelRef
    >>> window_key(Pair(ModelRef("iris", "ns", "clf", version="v1"), "r", 65 * NS), 60 * NS).id
    'ns|iris|v1|clf|60'
    """
    m = pair.model
    start = pair.request_time // size * size
    return WindowKey(m.namespace, m.model, m.version, m.node, start, size)


class WindowBook:
    """Assigns pairs to windows and hands out the windows the watermark has closed.

    >>> from stream.events import ModelRef
    >>> book = WindowBook(size=60 * NS, hold=10 * NS)
    >>> m = ModelRef("iris", "ns", "clf", version="v1")
    >>> book.add(Pair(m, "r1", 5 * NS, 5 * NS + 1)), book.add(Pair(m, "r1", 5 * NS, 5 * NS + 1))
    ('new', 'duplicate')
    >>> book.ready(watermark=69 * NS)
    []
    >>> [(k.start, len(pairs)) for k, pairs, _ in book.take_ready(watermark=70 * NS)]
    [(0, 1)]
    >>> book.add(Pair(m, "r2", 6 * NS, 6 * NS + 1))  # its window was already taken
    'late'
    """

    def __init__(self, size: int, hold: int,
                 store: MutableMapping[str, list] | None = None,
                 emitted: MutableMapping[str, int] | None = None,
                 emitted_retention: int = 7 * 86400 * NS, keep_pairs: bool = False) -> None:
        """`size`, `hold`, `emitted_retention`: int ns."""
        if size <= 0 or hold < 0:
            raise ValueError("size must be positive and hold non-negative")
        self.size = size
        self.hold = hold
        self.emitted_retention = emitted_retention
        # keep_pairs: store the Pair objects themselves, not their state records (a
        # store nobody serializes, as replay's dicts; pairs are never mutated).
        self.keep_pairs = keep_pairs
        self._keys = WindowKeys(size)
        # Pair objects with keep_pairs (nothing serializes them), else their states
        # (`stream.state`: `PairState`, `OrphanMark`).
        self._store: MutableMapping[str, Any] = {} if store is None else store
        self._emitted: MutableMapping[str, int] = {} if emitted is None else emitted
        self._index: dict[str, set[str]] = defaultdict(set)
        self.rebuild_index()

    def rebuild_index(self) -> None:
        """Re-derive which pairs belong to which open window from the store (and read
        a recovered store's states, `stream.state.upgrade`)."""
        if not self.keep_pairs:
            upgrade(self._store, _kind_of)
        self._index = defaultdict(set)
        for key in self._store.keys():
            wid = "|".join(key.split("|", 5)[:5])  # the request id may hold "|"
            self._index[wid].add(key)

    def key_of(self, pair: Pair) -> WindowKey:
        """`window_key(pair, size)`; the same object for the pairs of one window (built,
        and its `id` computed, once)."""
        return self._keys(pair)

    def is_emitted(self, key: WindowKey) -> bool:
        return key.id in self._emitted

    def add(self, pair: Pair, key: WindowKey | None = None) -> str:
        """Store a pair in its window: "new", "duplicate" (seen before) or "late".
        `key`: the pair's `key_of`, when the caller has it already."""
        wid = (key or self.key_of(pair)).id
        if wid in self._emitted:
            return LATE
        skey = f"{wid}|{pair.key}"
        if skey in self._store:
            return DUPLICATE
        self._store[skey] = pair if self.keep_pairs else pair.to_state()
        self._index[wid].add(skey)
        return NEW

    def add_orphan(self, key: WindowKey, request_id: str) -> bool:
        """Count a response without request in its window (idempotent); False if late."""
        if key.id in self._emitted:
            return False
        skey = f"{key.id}|{ORPHAN}{request_id}|{key.node}"
        if skey not in self._store:
            self._store[skey] = OrphanMark()
            self._index[key.id].add(skey)
        return True

    def open_windows(self) -> list[WindowKey]:
        return [WindowKey.parse(wid, self.size) for wid in self._index]

    def ready(self, watermark: float) -> list[WindowKey]:
        keys = [k for k in self.open_windows() if k.end + self.hold <= watermark]
        return sorted(keys, key=lambda k: (k.start, k.id))

    def take(self, key: WindowKey) -> tuple[list[Pair], int]:
        """Remove a window's pairs (sorted by request time, then id) and its orphan count,
        and mark it emitted."""
        skeys = self._index.pop(key.id, set())
        pairs, orphans = [], 0
        keep = self.keep_pairs
        for s in skeys:
            state = self._store.pop(s)
            if s.split("|", 6)[5].startswith(ORPHAN):
                orphans += 1
            else:
                pairs.append(state if keep else Pair.from_state(state))
        self._emitted[key.id] = key.end
        pairs.sort(key=lambda p: (p.request_time, p.request_id, p.model.node))
        return pairs, orphans

    def take_ready(self, watermark: float) -> list[tuple[WindowKey, list[Pair], int]]:
        out = [(k, *self.take(k)) for k in self.ready(watermark)]
        if out:
            self._prune_emitted(watermark)
        return out

    def take_all(self) -> list[tuple[WindowKey, list[Pair], int]]:
        """Close every open window (end of a replay)."""
        keys = sorted(self.open_windows(), key=lambda k: (k.start, k.id))
        return [(k, *self.take(k)) for k in keys]

    def _prune_emitted(self, watermark: float) -> None:
        horizon = watermark - self.emitted_retention
        for wid in [w for w, end in self._emitted.items() if end < horizon]:
            del self._emitted[wid]
