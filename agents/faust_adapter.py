"""Every use of faust-streaming's private API in predlog, in one place.

predlog keeps Faust for group membership, partition assignment, tables and their
changelog recovery, offsets and flow control, and changes three things underneath it,
each of which reaches into Faust internals (private methods and attributes of
faust-streaming `WRITTEN_FOR`, which `tests/unit/test_faust_adapter.py` pins: a
different installed version fails that test until this module was checked against it):

1. Records of the worker's input topics are handed over a fetch at a time
   (`BulkConsumer`, `BulkInput`, `BulkApp`).
2. Table recovery seeks stream partitions before resuming them (`SeekFirstRecovery`,
   `SeekFirstTableManager`).
3. Table state and changelog records bypass Faust's per-key paths
   (`memory_store_dict`, `aiokafka_producer`).
4. The worker's watchdog asks whether the consumer is waiting, in a rebalance, for
   records to be acked (`waiting_for_acks`).
5. A rebalance recovers every table partition from the start of its changelog
   (`recover_from_the_start`), also one the worker keeps.

## 1. Whole fetches
Records of the worker's input topics, handed over a fetch at a time instead of one by one.

Faust delivers every record on its own: the fetch loop awaits the topic conductor per
record (two tasks and a future each, in `wait_first`), the conductor wraps it in an
event and puts it into the agent's queue, and the stream takes it out again through
another `wait_first`. Measured with `bench/worker_bench.py`: a bare Faust agent that
takes batches and does nothing else costs 60-75 µs of CPU per record on this machine,
three times what all of predlog's stages cost (21 µs), and caps a worker at ~7,000
records/s.

Here the consumer's fetch loop (`BulkConsumer._drain_messages`) hands the records of
one fetched partition to a `BulkInput` as one list, and the worker's loop takes them
in batches from there (`BulkInput.batches`). Everything else stays Faust's: the group
membership and partition assignment, the table changelogs and their recovery (their
records still go through the conductor, one by one), the offsets (a record counts
once the worker acks it; Faust commits the acked prefix), flow control during a
rebalance (the queue is cleared with the agents' queues, and Faust waits for the
records a batch is working on to be acked before it gives partitions away).

## 2. Recovery
Faust's table recovery, with the stream partitions sought *before* they are resumed.

faust-streaming (0.11 to 0.15.3, `Recovery.on_recovery_completed`) resumes the assigned stream
partitions first and only then awaits `consumer.perform_seek()`. While that seek is in
flight (a broker round trip for the committed offsets; 0.2–0.6 s measured here) the
fetcher already delivers records, and the seek then rewinds Faust's read offsets under
them. Faust records the jump as an offset *gap*, and gap offsets count as acknowledged:
they are committed without ever reaching an agent. Measured with
`tests/integration/test_worker.py::test_sigkill_and_restart_gives_the_same_summaries`:
about one restart in three lost between 3 and ~200 consecutive records of every
`predlog.events` partition, the first records the new worker fetched.

The fix runs Faust's completion steps in the other order: the stream partitions stay
paused (Faust pauses everything it assigns) until they sit at their committed offsets,
and only then are resumed, so nothing is fetched from a position that is about to move.

## 3. Table state and changelog writes
`memory_store_dict(table)` is the plain dict under Faust's in-memory table store (through
the store's mapping wrapper every access cost ~10 µs of a worker's time per record);
`aiokafka_producer(app)` is the aiokafka producer under Faust's, for record batches
(one Faust `send` per changelog record cost ~25 µs).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import faust
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from mode.utils.queues import FlowControlQueue

# The faust-streaming release this module was written for and checked against.
WRITTEN_FOR = "0.15.3"


class BulkInput:
    """One consumer of some topics' records, in batches; acks them after processing.

    The queue holds whole fetched chunks (lists of Faust messages, one partition each),
    at most `max_chunks` of them: a full queue holds up the fetch loop (backpressure).
    """

    def __init__(self, app: faust.App, topics: Iterable[str], *, max_chunks: int = 8) -> None:
        self.app = app
        self.topics = frozenset(topics)
        self.max_chunks = max_chunks
        self._queue: FlowControlQueue | None = None

    @property
    def queue(self) -> FlowControlQueue:
        if self._queue is None:  # on the running loop, after the app's flow control exists
            self._queue = FlowControlQueue(self.max_chunks, flow_control=self.app.flow_control,
                                           clear_on_resume=True)
        return self._queue

    async def deliver(self, messages: list) -> None:
        """Queue one fetched chunk; its messages count as being processed from now on.

        Faust's `wait_empty` (before a rebalance gives partitions away) waits for the
        chunk to be acked: a chunk still queued is dropped by the flow control's
        clear (and leaves that weak set with its last reference), a chunk already taken
        into a batch is processed and acked first, as with Faust's own `take_events`.
        """
        # One message stands for its chunk: a chunk is acked as a whole, so the chunk is
        # in flight exactly while its last message is unacked (a weak-set entry per
        # message cost ~4% of a worker's time).
        unacked = self.app.consumer.unacked
        unacked.add(messages[-1])
        queue = self.queue
        try:
            if queue.full():
                await queue.put(messages)
            else:
                queue.put_nowait(messages)
        except BaseException:  # cancelled by a rebalance while the queue was full
            unacked.discard(messages[-1])
            raise

    async def batches(self, max_records: int, within: float, *,
                      ack: bool = True) -> AsyncIterator[list]:
        """Lists of at least one and about `max_records` messages, each acked after use.

        A batch is handed over when it has `max_records` messages or `within` seconds
        after its first chunk arrived; its messages are acked when the caller's loop
        body returns (not when it raises: then nothing of the batch is committed).
        With `ack=False` the caller acks each batch itself (`ack`), e.g. once its
        outputs were delivered while the next batch is already being processed.
        """
        queue = self.queue
        while True:
            batch = list(await queue.get())
            deadline = time.monotonic() + within
            while len(batch) < max_records:
                if queue.empty():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        batch.extend(await asyncio.wait_for(queue.get(), remaining))
                    except TimeoutError:
                        break
                else:
                    batch.extend(queue.get_nowait())
            yield batch
            if ack:
                self.ack(batch)
            del batch

    def ack(self, batch: list) -> None:
        """The batch is done: Faust may commit its offsets (with its producer flushed first)."""
        ack = self.app.consumer.ack
        for message in batch:
            ack(message)


class BulkConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer, with whole fetched chunks for the topics of a `BulkInput`."""

    bulk: Mapping[str, BulkInput] = MappingProxyType({})  # set by BulkApp

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs Kafka
        bulk = self.bulk
        callback = self.callback
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        read_offsets = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        to_message = self._to_message
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if not records or self.should_stop:
                    self.diag.unset_flag(CONSUMER_FETCHING)
                    continue
                generation = self.app.consumer_generation_id
                for tp, tp_records in records.items():
                    if not self.flow_active or self.app.consumer_generation_id != generation:
                        break
                    if (active is not None and tp not in active
                            and tp not in self._buffered_partitions):
                        await self._give_back(tp, tp_records[0].offset)
                        continue
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    target = bulk.get(tp.topic)
                    acks = acks_enabled_for(tp.topic)
                    read = read_offsets[tp]
                    chunk: list = []
                    for record in tp_records:
                        offset = record.offset
                        if read is not None and offset < read:
                            continue  # before where this partition was sought to
                        if acks and read and offset - read > 1:
                            # Offsets Kafka will never return (compaction, transaction
                            # markers) count as acked, as in Faust's own loop.
                            await self._add_gap(tp, read + 1, offset)
                        message = to_message(tp, record)
                        if target is None:  # tables' changelogs, anything not bulk
                            await self._maybe_commit()
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                            read_offsets[tp] = offset
                        else:
                            chunk.append(message)
                        read = offset
                    if chunk:
                        await self._maybe_commit()
                        done = await self.wait_first(target.deliver(chunk),
                                                     self.suspend_flow.wait())
                        if self.flow_active and not done.stopped:
                            read_offsets[tp] = chunk[-1].offset
                        chunk = []  # a rebalance waits for the messages it holds to go
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _give_back(self, tp: Any, first: int) -> None:  # pragma: no cover - Kafka
        """Records of a partition paused since they were fetched are not processed: make
        the partition read them again.

        `active` is Faust's live set of unpaused partitions. A recovery pauses the stream
        partitions and seeks them to their committed offsets while a fetch may be in
        flight; when that seek does not move the position (it already was the committed
        offset), the fetched records are still handed out — and dropped here, the position
        past them. Faust's loop does the same; seen here as a restarted worker that never
        read the records waiting in its input (its lag 0, nothing consumed), about one
        restart in three when the committed offsets were far behind.
        """
        if tp not in self.assignment():
            return  # revoked: whoever gets it starts from the committed offset
        position = await self.position(tp)
        if position is None or position > first:  # not sought back since the fetch
            self.log.info("%s: %s records fetched while paused; reading them again from %s",
                          tp, position - first if position else "", first)
            await self.seek(tp, first)

    async def _maybe_commit(self) -> None:
        every = self._commit_every
        if every is not None and self._n_acked >= every:
            self._n_acked = 0
            await self.commit()


class BulkTransport(AIOKafkaTransport):
    Consumer = BulkConsumer


class BulkApp(faust.App):
    """A Faust app whose consumer hands `bulk_inputs` their records a fetch at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.bulk_inputs: dict[str, BulkInput] = {}
        self._early_tasks: list[Callable[[], Awaitable[Any]]] = []
        super().__init__(*args, **kwargs)

    def early_task(self, fun: Callable[[], Awaitable[Any]]) -> None:
        """Run `fun()` from the app's start, not after table recovery as `app.task` does.

        (Public Faust API: `App.on_start` runs on every start before the consumer's
        group join and table recovery; `add_future` ties the task to the app's life.)
        For work that needs no table: the worker's re-key stage, so a restarted worker
        forwards labels within seconds, not after minutes of changelog recovery (a
        labels stream stalled that long let the events watermark expire the
        predictions those labels were for: found by bench/chaos.py's 1M-event form).
        """
        self._early_tasks.append(fun)

    async def on_start(self) -> None:
        await super().on_start()
        for fun in self._early_tasks:
            self.add_future(fun())

    def bulk_input(self, *topics: faust.TopicT, max_chunks: int = 8) -> BulkInput:
        """Subscribe to `topics` (declared at subscription) and read them with a BulkInput."""
        names = [name for topic in topics for name in topic.topics]
        overlap = set(names) & set(self.bulk_inputs)
        if overlap:
            raise ValueError(f"topics already read in bulk: {sorted(overlap)}")
        bulk = BulkInput(self, names, max_chunks=max_chunks)
        for topic in topics:
            self.topics.add(topic)
        for name in names:
            self.bulk_inputs[name] = bulk
        return bulk

    def _new_transport(self) -> AIOKafkaTransport:
        transport = BulkTransport(self.conf.broker_consumer, self)
        return transport

    def _new_consumer(self) -> Any:
        consumer = super()._new_consumer()
        consumer.bulk = self.bulk_inputs
        return consumer

class SeekFirstRecovery(Recovery):
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Faust's completion steps, with the seek moved before the resume.

        Not a wrapper around Faust's method with its seek disabled: the consumer also
        seeks on its own while flow is stopped (to rewind records fetched during a
        rebalance), and disabling that lost the records of newly subscribed topics.
        """
        consumer = self.app.consumer
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        pending = [asyncio.ensure_future(table.on_recovery_completed(
            self.actives_for_table[table], self.standbys_for_table[table]))
            for table in self.tables.values()]
        if pending:
            await asyncio.wait(pending)
        if self.app.consumer_generation_id != generation_id:
            self.log.warning(f"Recovery rebalancing again app id "
                             f"{self.app.consumer_generation_id} param {generation_id}")
            return
        streams = {tp for tp in consumer.assignment() if not self._is_changelog_tp(tp)}
        if streams:
            consumer.pause_partitions(streams)  # Faust paused them at assignment already
            self.log.info("Seek stream partitions to committed offsets (before resuming).")
            await self._wait(consumer.perform_seek(),
                             timeout=self.app.conf.broker_request_timeout)
        consumer.resume_partitions(streams)
        self.completed.set()
        self.app.flow_control.resume()
        consumer.resume_flow()
        await self.app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")


class SeekFirstTableManager(TableManager):
    """Faust's table manager with `SeekFirstRecovery` (the app's `TableManager` setting)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon,
                                               loop=self.loop)
        return self._recovery


def memory_store_dict(table: Any) -> Any:
    """The dict holding a table's keys in Faust's in-memory store, else the store itself."""
    store = table.data
    inner = getattr(store, "data", None)
    return inner if isinstance(inner, dict) else store


def aiokafka_producer(app: faust.App) -> Any:
    """The aiokafka producer under Faust's (`create_batch`/`send_batch` for changelogs)."""
    return app.producer._ensure_producer()


def waiting_for_acks(app: faust.App) -> bool:
    """Is the consumer in a rebalance's `wait_empty`, waiting for the records the stages
    hold to be acked? (mode's diagnostic flag of that Faust consumer method.)"""
    from faust.transport.consumer import CONSUMER_WAIT_EMPTY

    consumer = getattr(app, "_consumer", None)  # not created yet: not waiting
    return consumer is not None and CONSUMER_WAIT_EMPTY in consumer.diag.flags


def recover_from_the_start(app: faust.App) -> None:
    """Make the next recovery read every table changelog partition from its start.

    aiokafka's rebalances are eager: a worker is first told that *all* its partitions are
    revoked, and the worker clears its local state of all of them (it cannot tell yet
    which it gets back, and that state may hold changes of batches never acked). Faust's
    recovery keeps, for a partition it is given back, the changelog offset it had read to
    in its last recovery and reads on from there only: every key written before that
    offset would be gone. Forgetting those offsets makes it read the whole (compacted)
    changelog, as for a partition new to the worker.
    """
    recovery = app.tables.recovery
    recovery.active_offsets.clear()
    recovery.standby_offsets.clear()
