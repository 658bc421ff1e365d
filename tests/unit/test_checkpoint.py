"""The checkpoint steps' order (agents.checkpoint), with recording fakes for the producer
and the table views; the worker's integration tests run the real ones."""

from __future__ import annotations

import asyncio

import pytest

from agents.checkpoint import OFFSET_KEY, Checkpoints


class View:
    """A table view's checkpoint surface: changes taken, sent, and local replacements."""

    def __init__(self, log: list, partition: int, stored_offset: int | None = None) -> None:
        self.log, self.prefix = log, f"{partition}|"
        self.local: dict = {} if stored_offset is None else {OFFSET_KEY: stored_offset}
        self.changes: dict = {}

    def get(self, key, default=None):
        return self.local.get(key, default)

    def replace_local(self, key, value) -> None:
        self.local[key] = value

    def take_changes(self) -> dict:
        changes, self.changes = self.changes, {}
        return changes

    async def send_changes(self, producer, changes) -> None:
        if changes:
            self.log.append(("send", self.prefix, dict(changes)))


def _checkpoints(log: list, views: dict, fail_flush: bool = False):
    crashes: list = []

    async def flush() -> None:
        await asyncio.sleep(0)
        if fail_flush:
            raise RuntimeError("broker gone")
        log.append(("flush",))

    async def crash(exc) -> None:
        crashes.append(exc)

    return Checkpoints(flush, lambda: "producer", lambda kind: views.get(kind, []),
                       crash), crashes


def test_outputs_then_state_then_the_offsets_with_the_next_checkpoint() -> None:
    async def run():
        log: list = []
        view = View(log, 0)
        cps, _ = _checkpoints(log, {"window": [view]})
        cps.recover("window", 0, view)
        assert not cps.replayed("window", 0, 0)
        view.changes = {"0|w1": "summary"}
        await cps.begin("window", {0: 41})
        # processed locally at once (a record up to 41 read again is skipped) ...
        assert cps.replayed("window", 0, 41) and not cps.replayed("window", 0, 42)
        assert view.local[OFFSET_KEY] == 41
        # ... but its mark is not in the changelog yet: only the state, after the flush
        assert log == [("flush",), ("send", "0|", {"0|w1": "summary"})]
        assert cps.has_unsent_marks("window", [0])
        view.changes = {"0|w2": "summary"}
        await cps.begin("window", {0: 50})
        assert log[2:] == [("flush",), ("send", "0|", {"0|w2": "summary"}),
                           ("send", "0|", {"0|" + OFFSET_KEY: 41})]
        # a revocation writes the last one now, after a flush of what it stands for
        await cps.write_marks("window", {0})
        assert log[5:] == [("flush",), ("send", "0|", {"0|" + OFFSET_KEY: 50}), ("flush",)]
        assert not cps.has_unsent_marks("window")
        cps.forget("window", 0)
        assert not cps.replayed("window", 0, 0)

    asyncio.run(run())


def test_a_restarted_stage_skips_what_its_recovered_state_holds() -> None:
    log: list = []
    view = View(log, 3, stored_offset=99)
    cps, _ = _checkpoints(log, {"pair": [view]})
    cps.recover("pair", 3, view)
    assert cps.replayed("pair", 3, 99) and not cps.replayed("pair", 3, 100)
    assert not cps.replayed("pair", 4, 0)  # another partition: nothing recovered


def test_checkpoints_of_a_kind_complete_in_order() -> None:
    async def run():
        log: list = []
        view = View(log, 0)
        cps, _ = _checkpoints(log, {"pair": [view]})
        view.changes = {"0|a": 1}
        first = cps.begin("pair")
        view.changes = {"0|a": 2}
        second = cps.begin("pair")  # begun before the first completed
        await asyncio.gather(second, first)
        sends = [entry[2] for entry in log if entry[0] == "send"]
        assert sends == [{"0|a": 1}, {"0|a": 2}]  # never an older state after a newer one

    asyncio.run(run())


def test_a_failed_checkpoint_stops_the_worker_once_and_is_never_acked() -> None:
    async def run():
        log: list = []
        view = View(log, 0)
        cps, crashes = _checkpoints(log, {"pair": [view]}, fail_flush=True)
        view.changes = {"0|a": 1}
        first, second = cps.begin("pair", {}), cps.begin("pair", {})
        for done in (first, second):
            with pytest.raises(RuntimeError):
                await done
        assert len(crashes) == 1 and not [e for e in log if e[0] == "send"]

    asyncio.run(run())
