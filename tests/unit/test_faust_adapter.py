"""BulkInput's contract with Faust's consumer, on a stand-in consumer (no Kafka).

The real thing (BulkConsumer fetching from Kafka, rebalances, SIGKILL) is exercised by
tests/integration/test_worker*.py; these pin down the batching and acking rules.
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
from mode.utils.queues import FlowControlEvent

from agents.faust_adapter import BulkInput


class Msg:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class FakeConsumer:
    def __init__(self) -> None:
        self.unacked: weakref.WeakSet = weakref.WeakSet()
        self.acked: list[int] = []

    def ack(self, message: Msg) -> bool:
        self.unacked.discard(message)
        self.acked.append(message.offset)
        return True


class FakeApp:
    def __init__(self) -> None:
        self.flow_control = FlowControlEvent(initially_suspended=False)
        self.consumer = FakeConsumer()


def chunk(start: int, n: int) -> list[Msg]:
    return [Msg(o) for o in range(start, start + n)]


async def test_chunks_are_joined_into_batches_and_acked_after_the_body() -> None:
    app = FakeApp()
    bulk = BulkInput(app, ["t"], max_chunks=8)
    for start in (0, 3, 6):
        await bulk.deliver(chunk(start, 3))
    assert len(app.consumer.unacked) == 3  # in flight from delivery on: a message per chunk
    it = bulk.batches(max_records=5, within=0.05)
    first = await it.__anext__()
    assert [m.offset for m in first] == [0, 1, 2, 3, 4, 5]  # whole chunks, up to >= 5
    assert app.consumer.acked == []  # not before the body is done
    second = await it.__anext__()
    assert app.consumer.acked == [0, 1, 2, 3, 4, 5]
    assert [m.offset for m in second] == [6, 7, 8]  # the rest, after `within`
    await it.aclose()
    assert app.consumer.acked == [0, 1, 2, 3, 4, 5]  # closed inside the body: not acked


async def test_a_batch_whose_body_raises_is_not_acked() -> None:
    app = FakeApp()
    bulk = BulkInput(app, ["t"])
    await bulk.deliver(chunk(0, 4))
    with pytest.raises(RuntimeError):
        async for _batch in bulk.batches(max_records=10, within=0.01):
            raise RuntimeError("stage failed")
    assert app.consumer.acked == []


async def test_a_full_queue_holds_the_fetch_loop_until_a_batch_is_taken() -> None:
    app = FakeApp()
    bulk = BulkInput(app, ["t"], max_chunks=1)
    await bulk.deliver(chunk(0, 2))
    blocked = asyncio.ensure_future(bulk.deliver(chunk(2, 2)))
    await asyncio.sleep(0.01)
    assert not blocked.done()  # backpressure on the fetcher
    it = bulk.batches(max_records=2, within=0.01)
    await it.__anext__()
    await asyncio.wait_for(blocked, 1.0)
    await it.aclose()


async def test_queued_chunks_cleared_by_flow_control_stop_counting_as_in_flight() -> None:
    # A rebalance clears the queues and waits for what is still unacked: cleared chunks
    # must drop out of the consumer's weak set of unacked messages.
    app = FakeApp()
    bulk = BulkInput(app, ["t"])
    await bulk.deliver(chunk(0, 3))
    assert len(app.consumer.unacked) == 1
    app.flow_control.suspend()
    app.flow_control.clear()
    gc.collect()
    assert len(app.consumer.unacked) == 0


async def test_a_delivery_cancelled_while_the_queue_is_full_is_not_in_flight() -> None:
    app = FakeApp()
    bulk = BulkInput(app, ["t"], max_chunks=1)
    await bulk.deliver(chunk(0, 1))
    kept = chunk(1, 2)
    blocked = asyncio.ensure_future(bulk.deliver(kept))
    await asyncio.sleep(0.01)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert not any(m in app.consumer.unacked for m in kept)


async def test_without_auto_ack_the_caller_acks_each_batch_when_it_is_done() -> None:
    app = FakeApp()
    bulk = BulkInput(app, ["t"])
    await bulk.deliver(chunk(0, 2))
    await bulk.deliver(chunk(2, 2))
    it = bulk.batches(max_records=2, within=0.01, ack=False)
    first = await it.__anext__()
    second = await it.__anext__()  # the first is still not acked
    assert app.consumer.acked == []
    bulk.ack(second)
    bulk.ack(first)
    assert app.consumer.acked == [2, 3, 0, 1]  # Faust commits only the acked prefix
    await it.aclose()


def test_the_installed_faust_is_the_release_the_adapter_was_written_for():
    """agents/faust_adapter.py overrides private methods of faust-streaming: a different
    release may have changed them. Check the adapter against the new release (read its
    `Consumer._drain_messages`, `Recovery.on_recovery_completed`, the in-memory store and
    the producer), then move `WRITTEN_FOR` and the pin in pyproject.toml together."""
    from importlib.metadata import version

    from agents.faust_adapter import WRITTEN_FOR

    assert version("faust-streaming") == WRITTEN_FOR


def test_no_other_module_reaches_into_faust_internals():
    """Faust's private API is used in agents/faust_adapter.py only."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    private = re.compile(r"\b(_ensure_producer|_drain_messages|_read_offset|_fetcher|"
                         r"on_recovery_completed|_new_consumer|_new_transport)\b|"
                         r"\.data\.data\b")
    offenders = [str(p.relative_to(root)) for folder in ("agents", "stream", "sinks")
                 for p in sorted((root / folder).rglob("*.py"))
                 if p.name != "faust_adapter.py" and private.search(p.read_text())]
    assert offenders == []


def test_waiting_for_acks_reads_the_consumers_wait_empty_flag() -> None:
    """The watchdog's question, against the installed Faust consumer (building it connects
    to nothing): true exactly while a method flagged as Faust flags `wait_empty` runs."""
    import inspect

    from faust.transport.consumer import CONSUMER_WAIT_EMPTY, Consumer
    from mode import Service

    from agents.faust_adapter import BulkApp, waiting_for_acks

    app = BulkApp("watchdog-test", broker="kafka://127.0.0.1:1")
    assert not waiting_for_acks(app)  # no consumer built yet
    consumer = app.consumer
    assert not waiting_for_acks(app)
    seen = []

    async def body(self) -> None:
        seen.append(waiting_for_acks(app))

    asyncio.run(Service.transitions_to(CONSUMER_WAIT_EMPTY)(body)(consumer))
    assert seen == [True] and not waiting_for_acks(app)
    # and that is the flag Faust's own wait_empty carries
    assert "transitions_to(CONSUMER_WAIT_EMPTY)" in inspect.getsource(Consumer)


def test_recover_from_the_start_forgets_the_offsets_a_kept_partition_would_resume_from():
    """After it, Faust's recovery of a partition the worker keeps through a rebalance starts
    at the changelog's beginning (`_add` sets None; `_build_offsets` then takes earliest)."""
    from faust.types import TP

    from agents.faust_adapter import BulkApp, SeekFirstTableManager, recover_from_the_start

    app = BulkApp("recovery-test", broker="kafka://127.0.0.1:1",
                  TableManager=SeekFirstTableManager)
    table = app.Table("t", default=None, partitions=2)
    recovery = app.tables.recovery
    tp = TP(table.changelog_topic.get_topic_name(), 1)
    recovery.active_offsets[tp] = 41  # read to 41 by the last recovery
    recovery.standby_offsets[tp] = 7
    recover_from_the_start(app)
    assert not recovery.active_offsets and not recovery.standby_offsets
    recovery._add(table, tp, recovery.active_offsets)  # what on_rebalance does next
    assert recovery.active_offsets[tp] is None  # -> the earliest offset
