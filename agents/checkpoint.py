"""The worker's checkpoints: when a stage's outputs, state and input offsets may advance.

A stage (kind "pair" or "window") processes a batch, then checkpoints it. A checkpoint
has three steps, in this order, each only after the one before completed:

1. **outputs delivered** — the producer is flushed: everything the batch sent (its
   `predlog.pairs` messages, window summaries, dead letters) is acknowledged by Kafka;
2. **state to the changelog** — the changes the batch made to the stage's table views,
   taken when the checkpoint began, are sent to their changelogs;
3. **offsets** — the batch's input offsets are recorded as processed in the stage's
   state (with the *next* checkpoint's state, so never ahead of what they stand for), and
   the batch is acked, which lets Faust commit its offsets.

Checkpoints of one kind complete in order (each waits for the one before), so a changelog
never gets an older state after a newer one, while the stage goes on with its next batch
(step 1 is a broker round trip: about 40% of the pair stage's time when it was awaited in
line). A crash between any two steps loses nothing: the input is read again from the last
committed offset, and what the recovered state already holds is skipped (`replayed`).
What a crash between steps 1 and 2 can repeat is an output: `predlog.windows` is
at-least-once (README, Known limits).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from agents.tablestore import TableView

log = logging.getLogger("predlog.worker")

OFFSET_KEY = "offset"  # in a stage's marks: the last input offset its changelog holds
FLUSH_TIMEOUT_SECONDS = 120.0


class Checkpoints:
    """Begins and completes the checkpoints of the worker's stages; see the module.

    `flush()`: flush the producer (step 1); `producer()`: the producer the changelog
    records go through (step 2); `views(kind)`: the table views of the stages of `kind`
    now assigned; `crash(exc)`: stop the worker (a failed checkpoint must not be skipped).
    """

    def __init__(self, flush: Callable[[], Awaitable[Any]], producer: Callable[[], Any],
                 views: Callable[[str], Iterable[TableView]],
                 crash: Callable[[BaseException], Awaitable[Any]]) -> None:
        self._flush, self._producer, self._views, self._crash = flush, producer, views, crash
        # Per stage kind and input partition: the last input offset whose state changes
        # reached the changelog (recovered with the state). Records up to it are already
        # in the recovered state and are skipped when read again.
        self.processed: dict[tuple[str, int], int] = {}
        self.offset_views: dict[tuple[str, int], TableView] = {}
        # Per stage kind: the offsets of its last checkpoint, written by the next one.
        self.unsent_marks: dict[str, dict[int, int]] = {}
        self._last: dict[str, asyncio.Future] = {}  # the last checkpoint of each kind

    # -- processed offsets ---------------------------------------------------------------
    def recover(self, kind: str, partition: int, view: TableView) -> None:
        """A (re)assigned partition: its processed offset is what its recovered state says."""
        self.offset_views[(kind, partition)] = view
        self.processed[(kind, partition)] = view.get(OFFSET_KEY, -1)

    def replayed(self, kind: str, partition: int, offset: int) -> bool:
        """Was this input record processed before, its state already recovered? (It is
        read again when the offsets committed lag the changelog: a restart, a rebalance.)"""
        return offset <= self.processed.get((kind, partition), -1)

    def forget(self, kind: str, partition: int) -> None:
        """A revoked partition (after `write_marks`)."""
        self.processed.pop((kind, partition), None)
        self.offset_views.pop((kind, partition), None)

    def has_unsent_marks(self, kind: str, partitions: Iterable[int] | None = None) -> bool:
        unsent = self.unsent_marks.get(kind, {})
        return bool(unsent) if partitions is None else bool(set(partitions) & set(unsent))

    # -- the steps -----------------------------------------------------------------------
    def begin(self, kind: str, offsets: dict[int, int] | None = None) -> asyncio.Future:
        """Take this batch's state changes and begin its checkpoint; the returned future
        completes after step 2, when the batch may be acked (step 3).

        `offsets`: the last input offset the batch read, per partition; recorded as
        processed locally now, and in the changelog with the next checkpoint of the kind.
        """
        taken = [(view, view.take_changes()) for view in self._views(kind)]
        # The offsets the previous checkpoint recorded: its state is delivered by this
        # checkpoint's flush, so they may follow it now (never ahead of their state).
        marks = self._marks_of(kind, self.unsent_marks.pop(kind, {}))
        fresh = {}
        for partition, offset in (offsets or {}).items():
            view = self.offset_views.get((kind, partition))
            if view is not None and offset > self.processed.get((kind, partition), -1):
                self.processed[(kind, partition)] = offset  # the local state holds it now
                view.replace_local(OFFSET_KEY, offset)
                fresh[partition] = offset
        if fresh:
            self.unsent_marks[kind] = fresh
        previous = self._last.get(kind)
        done = asyncio.ensure_future(self._complete(previous, taken, marks))
        self._last[kind] = done
        return done

    async def _complete(self, previous: asyncio.Future | None, taken, marks) -> None:
        try:
            if previous is not None:
                await previous
            await self.flush()  # step 1: outputs delivered
            producer = self._producer()
            for view, changes in taken:  # step 2: state to the changelog
                await view.send_changes(producer, changes)
            for view, changes in marks:  # (step 3 of the checkpoint before)
                await view.send_changes(producer, changes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if previous is None or not previous.done() or previous.exception() is None:
                await self._crash(exc)  # once, by the first checkpoint that failed
            raise

    def _marks_of(self, kind: str, offsets: dict[int, int]) -> list:
        """Changelog changes recording `offsets` as processed, for the assigned partitions.

        The changelog may hold state of records whose offsets were never committed (the
        offset commit follows the state); a recovered worker reads them again, and a
        response read again whose request's `done` marker had expired meanwhile would count
        as an orphan a second time. So the state says up to which input offset it holds:
        the offsets of one checkpoint are written with the next one of the stage (a
        batch's, or the timer's), after its flush delivered their state — never ahead of
        it (one extra flush per checkpoint to write them at once cost 14% of the
        throughput).
        """
        marks = []
        for partition, offset in offsets.items():
            view = self.offset_views.get((kind, partition))
            if view is not None:
                marks.append((view, {view.prefix + OFFSET_KEY: offset}))
        return marks

    async def write_marks(self, kind: str, partitions: set[int]) -> None:
        """Record the given partitions' processed offsets now (they are being revoked)."""
        while True:  # until no checkpoint of this kind is in flight
            done = self._last.get(kind)
            if done is not None:
                try:
                    await done
                except Exception:
                    return  # the failed checkpoint stops the worker
            await self.flush()  # the last checkpoint's state is delivered
            if self._last.get(kind) is done:
                break
        unsent = self.unsent_marks.get(kind, {})
        marks = self._marks_of(kind, {p: unsent.pop(p) for p in partitions if p in unsent})
        if marks:
            producer = self._producer()
            for view, changes in marks:
                await view.send_changes(producer, changes)
            await self.flush()

    async def flush(self) -> None:
        """Step 1; a flush that does not complete stops the worker (nothing of the batch is
        committed: it restarts from the changelog and the committed offsets)."""
        try:
            await asyncio.wait_for(self._flush(), timeout=FLUSH_TIMEOUT_SECONDS)
        except TimeoutError:
            log.critical("producer flush stuck for %ss: stopping", FLUSH_TIMEOUT_SECONDS)
            raise
