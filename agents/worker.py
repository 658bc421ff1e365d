"""`predlog worker`: the Faust app. Thin wiring; the logic is in `stream/`.

Three stages. The first (`agents.rekey`) has its own aiokafka consumer, subscribed by
pattern so new model topics are read without a restart; the other two are Faust
stages processing batches of records (`agents.faust_adapter`: the consumer hands over
whole fetches instead of Faust's one event at a time) and letting Faust commit a batch's
offsets only after the batch's outputs were flushed (a batch is acked once its outputs
and then its state changes were handed to the producer — for the pair stage in the
background while it processes the next batch — and Faust flushes its producer before
committing):

1. `rekey`   external logger topics (Seldon v1 Kafka mode, MLServer, Seldon v2 model
             topics, by pattern) and the labels topic → `predlog.events`, keyed by
             request id, original timestamp, the source topic in a header.
             Undecodable records → `predlog.dlq`.
2. `pair`    `predlog.events` (keyed by request id) → `PairingStage` → outcomes to
             `predlog.pairs`, keyed by namespace|model, with the stage's watermark.
3. `window`  `predlog.pairs` → `WindowStage` → pairs and summaries to the
             Prometheus collector and Elasticsearch, summaries to `predlog.windows`.
             A sink failing transiently holds the batch (backpressure, `/readyz` 503,
             `predlog_sink_up` 0); what a sink refuses for good → `predlog.dlq`.

State (pending requests, open windows, emitted windows) lives in changelogged Faust
tables, one key prefix per partition (`agents.tablestore.TableView`), so a restarted
or rebalanced worker recovers it; replayed records are idempotent by key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import faust
import orjson
from aiokafka.partitioner import murmur2
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from agents.checkpoint import Checkpoints
from agents.faust_adapter import (
    BulkApp,
    BulkInput,
    SeekFirstTableManager,
    aiokafka_producer,
    recover_from_the_start,
    waiting_for_acks,
)
from agents.kafka_auth import faust_credentials
from agents.labelstate import (
    DiskJoinState,
    changelog_consumer,
    changelog_producer,
    declare_compacted_topic,
)
from agents.monitoring_setup import make_monitoring
from agents.rekey import KIND_HEADER, SOURCE_TOPIC_HEADER, Rekeyer, run_forever
from agents.settings import Settings, make_redactor
from agents.tablestore import TableView
from stream.deadletters import dead_letter_headers
from stream.decode import native
from stream.decode.kafka_records import decode_kafka_record
from stream.decode.labels import Label, decode_label_record, feedback_labels
from stream.events import DeadLetter, EventKind, SourceCoords
from stream.eventtime import NS, ms_to_ns, seconds_to_ns
from stream.labels import JoinedLabel, LabelJoiner
from stream.pairs import (
    Pair,
    decode_outcomes,
    encode_heartbeat,
    encode_joined,
    encode_outcome,
    encode_records,
    joined_from_state,
    joined_to_state,
)
from stream.pipeline import PairingStage, StepResult, WindowStage
from stream.state import BootstrapState, load
from stream.watermark import Watermark
from stream.window_summary import WindowSummary
from stream.windows import WindowKey

log = logging.getLogger("predlog.worker")
DUMPS = orjson.OPT_SORT_KEYS


def _window_ids(labels: Any, summaries: Any) -> set[str]:
    """The windows a window-stage partition keeps state of: those of its joined labels
    (keys `<window id>|<request id>|<row>`; a window id has five fields) and of its emitted
    summaries (keys: window ids)."""
    return {"|".join(k.split("|", 5)[:5]) for k in labels.keys()} | set(summaries.keys())


def _headers(message: Any) -> list[tuple[str, bytes]]:
    h = message.headers or []
    return list(h.items()) if isinstance(h, dict) else list(h)


class Worker:
    """Builds the Faust app and owns the per-partition stages and the sinks."""

    def __init__(self, settings: Settings, *, es_sink: Any = None,
                 clock: Any = time.time) -> None:
        from sinks.prometheus import PrometheusSink

        self.settings = settings
        self.clock = clock
        self.es_sink = es_sink
        self.metrics = PrometheusSink(clock)
        self.registry = CollectorRegistry()
        self.registry.register(self.metrics)
        self.pairing: dict[int, PairingStage] = {}
        self.windowing: dict[int, WindowStage] = {}
        self.last_offsets: dict[tuple[str, int], int] = {}
        self.pair_watermark = Watermark(settings.idle_partition_seconds, clock=clock,
                                        caught_up=self._events_caught_up)
        # How far each stage-1 partition has expired; what it may promise stage 2.
        self.expired_through: dict[int, float] = {}
        self.window_watermarks: dict[int, Watermark] = {}
        self.model_partition: dict[tuple[str, str, str, str], int] = {}
        self.views: dict[tuple[str, int], tuple[TableView, ...]] = {}
        # When each stage's outputs, state and input offsets advance (agents.checkpoint).
        self.checkpoints = Checkpoints(flush=lambda: self.app.producer.flush(),
                                       producer=lambda: aiokafka_producer(self.app),
                                       views=self._views_of, crash=lambda e: self.app.crash(e))
        native.set_enabled(settings.native)
        self.monitoring = make_monitoring(settings)
        self.redactor = make_redactor(settings)  # what leaves for the dead-letter topic
        # A batch and a timer tick never interleave on one stage: a commit point must
        # write to the changelog only state whose outputs were already delivered.
        self.pair_lock = asyncio.Lock()
        self.window_lock = asyncio.Lock()
        # Stage 1's label joins, on disk (agents.labelstate), per events partition.
        self.label_states: dict[int, DiskJoinState] = {}
        self.label_topic = f"{settings.consumer_group}-labelstate-changelog"
        self._label_producer: Any = None  # started with the first label state
        self._stages_lock = asyncio.Lock()
        # Stage-1 records for `predlog.pairs` by target partition, sent as one message per
        # partition at the end of a batch or tick (before its commit point).
        self.outbox: dict[int, list[bytes]] = defaultdict(list)
        self.assigned_at: dict[int, float] = {}  # when each stage-1 stage was (re)built
        self._targets: dict[bytes, int] = {}
        self._waiting_since: float | None = None  # a rebalance waiting for acks (watchdog)
        self.mlflow = make_mlflow_sink(settings)
        health = self.metrics.sink_health
        for name, sink in (("elasticsearch", es_sink), ("mlflow", self.mlflow)):
            if sink is not None:  # retries are counted, and shown by /readyz, while they last
                health.register(name)
                sink.on_retry = lambda exc, name=name: health.retrying(name, exc)
        self.app = self._build_app()
        self.label_state_dir = Path(settings.label_state_dir
                                    or Path(str(self.app.conf.datadir)) / "labelstate")

    # -- app ----------------------------------------------------------------------------------
    def _build_app(self) -> faust.App:
        s = self.settings
        app = BulkApp(
            s.consumer_group,
            broker=f"kafka://{s.kafka_bootstrap}",
            store="memory://",
            **({"datadir": s.data_dir} if s.data_dir else {}),
            web_host=s.web_host,
            web_bind=s.web_host,
            web_port=s.prometheus_port,
            topic_partitions=s.partitions,
            topic_replication_factor=1,
            consumer_auto_offset_reset="earliest",
            broker_commit_interval=1.0,
            producer_acks=-1,
            # Batch producer requests: a batch sends many outcomes and changelog records.
            producer_linger=0.02,
            # A send that never completes must not block every stage for Faust's default
            # 20 minutes: fail it, and let the commit point's timeout restart the worker.
            producer_request_timeout=60.0,
            producer_max_batch_size=512 * 1024,
            table_standby_replicas=0,
            # Seek stream partitions before resuming them after a recovery (see the module).
            TableManager=SeekFirstTableManager,
            broker_credentials=faust_credentials(s),
        )
        # internal: declared (created where missing) when the consumer subscribes.
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw",
                   value_serializer="raw", internal=True)
        self.events = app.topic(s.topic_events, partitions=s.partitions, **raw)
        self.pairs = app.topic(s.topic_pairs, partitions=s.partitions, **raw)
        self.windows_topic = app.topic(s.topic_windows, partitions=s.partitions, **raw)
        self.dlq = app.topic(s.topic_dlq, partitions=s.partitions, **raw)
        schema = faust.Schema(key_serializer="json", value_serializer="json")
        tables = dict(default=None, partitions=s.partitions, schema=schema)
        self.pending_table = app.Table("pending", **tables)
        self.windows_table = app.Table("windows", **tables)
        self.emitted_table = app.Table("emitted", **tables)
        # stage 1's label joins, unless on disk (PREDLOG_LABEL_STATE=disk, agents.labelstate)
        if s.label_state == "memory":
            self.labeljoin_table = app.Table("labeljoin", **tables)
        self.labels_table = app.Table("labels", **tables)  # stage 2: joined labels per window
        self.summaries_table = app.Table("summaries", **tables)  # stage 2: for revisions
        # Stage 2: bootstrap references ("namespace|model|node" -> BootstrapState), for the
        # models without a configured reference (stream.drift.bootstrap).
        self.bootstrap_table = app.Table("bootstrap", **tables)
        # Stage 1: the largest event time read from each events partition, so a worker that
        # is given a partition whose records were all processed elsewhere still knows how
        # far it has got (else it holds the watermark, and the last windows never close).
        self.marks_table = app.Table("marks", **tables)
        # Stage 2: the last `predlog.pairs` offset whose effects are in the changelog (stage
        # 1 keeps its own under "offset" in `marks`); see agents.checkpoint.
        self.window_marks_table = app.Table("windowmarks", **tables)

        # Stage 0 reads the external topics by pattern with its own consumer (agents.rekey).
        self.rekeyer = Rekeyer(s, on_consumed=self._consumed, on_decoded=self._decoded,
                               on_dead_letter=self._dead_lettered)
        # From the app's start: it needs no table, and labels must not wait for recovery.
        app.early_task(lambda: run_forever(self.rekeyer, self.app.crash))
        inputs = {"pair": (app.bulk_input(self.events), self._pair_batch, self.pair_lock),
                  "window": (app.bulk_input(self.pairs), self._window_batch, self.window_lock)}
        for name, (bulk, handle, lock) in inputs.items():
            app.task(self._stage_task(name, bulk, handle, lock))
        # Faust calls a page function as fun(view, request); bind self through closures.
        app.page("/metrics")(lambda view, request: self._metrics_page(view, request))
        app.page("/healthz")(lambda view, request: self._health_page(view, request))
        app.page("/readyz")(lambda view, request: self._ready_page(view, request))
        app.on_partitions_revoked.connect(self._on_revoked)
        app.timer(max(1.0, 2 * s.batch_seconds))(self._tick)
        app.timer(5.0)(self._watchdog)
        return app

    # -- pages ---------------------------------------------------------------------------------
    async def _metrics_page(self, web, request):
        # aiohttp wants the charset apart from the content type.
        return web.bytes(generate_latest(self.registry),
                         content_type=CONTENT_TYPE_LATEST.split(";")[0])

    async def _health_page(self, web, request):
        return web.json({"status": "ok"})

    async def _ready_page(self, web, request):
        if self.app.consumer is None or self.app.rebalancing:
            return web.json({"status": "rebalancing"}, status=503)
        failing = self.metrics.sink_health.failing()
        if failing:  # consumption is paused until the sink takes writes again
            return web.json({"status": "sink_failing", "sinks": failing}, status=503)
        return web.json({"status": "ready"})

    # -- rebalancing -----------------------------------------------------------------------------
    async def _on_revoked(self, app, revoked, **kwargs) -> None:
        # Local state of every revoked partition is cleared below; the ones given back
        # must then be recovered from their whole changelog (agents.faust_adapter).
        recover_from_the_start(self.app)
        kinds = {self.settings.topic_events: "pair", self.settings.topic_pairs: "window"}
        for kind in ("pair", "window"):
            gone = {tp.partition for tp in revoked if kinds.get(tp.topic) == kind}
            if self.checkpoints.has_unsent_marks(kind, gone):
                try:  # the next owner skips what this worker's state already holds
                    await self.checkpoints.write_marks(kind, gone)
                except Exception as exc:  # it reads those records again instead
                    log.warning("processed offsets of %s not written: %s", sorted(gone), exc)
        for tp in revoked:
            self.last_offsets.pop((tp.topic, tp.partition), None)
            kind = {self.settings.topic_events: "pair",
                    self.settings.topic_pairs: "window"}.get(tp.topic)
            if kind is not None:
                self.checkpoints.forget(kind, tp.partition)
            if tp.topic == self.settings.topic_events and tp.partition in self.pairing:
                del self.pairing[tp.partition]
                self.label_states.pop(tp.partition, None)  # closed by clear_local below
                self.expired_through.pop(tp.partition, None)
                for view in self.views.pop(("pair", tp.partition), ()):
                    view.clear_local()
                self.pair_watermark.forget(tp.partition)
            elif tp.topic == self.settings.topic_pairs and tp.partition in self.windowing:
                del self.windowing[tp.partition]
                self.window_watermarks.pop(tp.partition, None)
                views = self.views.pop(("window", tp.partition), ())
                if views:  # the next owner revises these windows, not this worker
                    self.monitoring.forget(_window_ids(views[2], views[3]))
                for view in views:
                    view.clear_local()
                gone = tp.partition
                self.metrics.retain(lambda k, gone=gone: self.model_partition.get(k) != gone)

    async def _watchdog(self) -> None:
        """Exit a worker whose rebalance has waited `stuck_rebalance_seconds` for its stages
        to ack their batches (found by bench/chaos.py: after an Elasticsearch outage a
        worker waited in the rebalance for good, healthy to a liveness probe and holding
        nothing). Every task's stack goes to the log first, to show what it waited on;
        then a hard exit, as a SIGKILL: the changelogs and offsets are built for it, and
        Faust's own shutdown would wait for the same acks."""
        if not waiting_for_acks(self.app):
            self._waiting_since = None
            return
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        elif now - self._waiting_since >= self.settings.stuck_rebalance_seconds:
            log.critical("rebalance waited %.0f s for the stages' acks: exiting; tasks:\n%s",
                         now - self._waiting_since, _task_stacks())
            logging.shutdown()
            os._exit(70)

    def _caught_up(self, topic: str, partition: int) -> bool:
        """Has this worker read everything the broker has in the partition?"""
        from faust.types import TP

        tp = TP(topic, partition)
        try:
            high = self.app.consumer.highwater(tp)
        except Exception:  # not assigned or not fetched yet
            return False
        if high is None:
            return False
        lag = max(0, high - (self.last_offsets.get((topic, partition), -1) + 1))
        self.metrics.consumer_lag[(topic, partition)] = lag
        return lag == 0

    async def _learn_positions(self) -> None:
        """Where an assigned events partition stands before any record was read from it.

        A partition that moved here after its last record was processed elsewhere gives this
        worker nothing to read; without its position it would look behind forever and hold
        the watermark (seen as the last windows never closing after a rebalance).
        """
        from faust.types import TP

        topic = self.settings.topic_events
        idle = self.settings.idle_partition_seconds
        for partition in self.pairing:
            if (topic, partition) not in self.last_offsets:
                try:
                    position = await asyncio.wait_for(
                        self.app.consumer.position(TP(topic, partition)), timeout=5.0)
                except Exception:  # not assigned any more, or not known yet
                    continue
                if position is not None:
                    self.last_offsets[(topic, partition)] = position - 1
            mark = self.views[("pair", partition)][2].get("events")
            if (mark is not None and self.pair_watermark.max_of(partition) is None
                    and self.clock() - self.assigned_at.get(partition, 0.0) >= idle
                    and (topic, partition) in self.last_offsets
                    and self._caught_up(topic, partition)):
                # Nothing read here since the assignment, and nothing to read: the partition
                # has got as far as its last reader did. (Only then: records to replay
                # report themselves, and the mark may be newer than the recovered state.)
                self.pair_watermark.update(partition, mark)

    def _events_caught_up(self, partition) -> bool:
        return self._caught_up(self.settings.topic_events, partition)

    async def _ensure_stages(self) -> None:
        """Stages (and their recovered state) for every assigned partition, also idle ones."""
        s = self.settings
        events = set()
        async with self._stages_lock:  # both stages' tasks call this; opening awaits
            for tp in self.app.consumer.assignment():
                if tp.topic == s.topic_events:
                    if self.settings.label_state == "disk" and tp.partition not in self.pairing:
                        await self._open_label_state(tp.partition)
                    self._pairing_stage(tp.partition)
                    events.add(tp.partition)
                elif tp.topic == s.topic_pairs:
                    self._window_stage(tp.partition)
        self.pair_watermark.expect(events)

    async def _open_label_state(self, partition: int) -> None:
        """This partition's label joins on disk, caught up with their changelog."""
        old = self.label_states.pop(partition, None)
        if old is not None:
            old.close()
        s = self.settings
        if self._label_producer is None:
            await declare_compacted_topic(s, self.label_topic)
            self._label_producer = await changelog_producer(s)
        state = DiskJoinState(self.label_state_dir / f"p{partition}", self.label_topic,
                              partition, s.label_state_memory_mb << 20, self._label_producer)
        started = self.clock()
        read = await state.open(lambda: changelog_consumer(s))
        log.info("label state of partition %s: %s changelog records read in %.1f s",
                 partition, read, self.clock() - started)
        self.label_states[partition] = state

    def _pairing_stage(self, partition: int) -> PairingStage:
        stage = self.pairing.get(partition)
        if stage is None:  # first batch after (re)assignment: the table is recovered
            view = TableView(self.pending_table, partition)
            marks = TableView(self.marks_table, partition)
            horizon = self.settings.label_horizon_seconds
            joins: Any
            if self.settings.label_state == "disk":
                joins = self.label_states[partition]  # opened by `_ensure_stages`
                joiner = LabelJoiner(horizon, state=joins)
            else:  # a changelogged Faust table, in memory
                joins = TableView(self.labeljoin_table, partition)
                joiner = LabelJoiner(horizon, joins)
            self.views[("pair", partition)] = (view, joins, marks)
            self.checkpoints.recover("pair", partition, marks)
            self.assigned_at[partition] = self.clock()
            stage = PairingStage(self.settings.pairing_ttl_seconds, view, joiner,
                                 self.settings.window_seconds, self.monitoring.segmenter)
            self.pairing[partition] = stage
        return stage

    def _window_stage(self, partition: int) -> WindowStage:
        stage = self.windowing.get(partition)
        if stage is None:
            s = self.settings
            views = (TableView(self.windows_table, partition),
                     TableView(self.emitted_table, partition))
            labels = TableView(self.labels_table, partition)
            summaries = TableView(self.summaries_table, partition)
            offsets = TableView(self.window_marks_table, partition)
            bootstraps = TableView(self.bootstrap_table, partition)
            self.views[("window", partition)] = (*views, labels, summaries, offsets,
                                                 bootstraps)
            self.checkpoints.recover("window", partition, offsets)
            stage = WindowStage(s.window_seconds, max(s.allowed_lateness_seconds,
                                                      s.pairing_ttl_seconds), *views,
                                monitoring=self.monitoring)
            # Recovered state: joined labels first, then the windows they may revise. What
            # this worker kept of them from an earlier assignment goes first: the changelog
            # holds it all, and on top of it the labels would count twice.
            self.monitoring.forget(_window_ids(labels, summaries))
            for state in labels.values():
                self.monitoring.add_joined(joined_from_state(state))
            for bkey, state in bootstraps.items():
                self.monitoring.restore_bootstrap(bkey, load(state, BootstrapState))
            for wid, summary in summaries.items():
                self.monitoring.restore_emitted(
                    WindowKey.parse(wid, seconds_to_ns(s.window_seconds)),
                    WindowSummary.from_builtins(summary))
            self.windowing[partition] = stage
            # Every stage-1 partition reports here (pairs or heartbeats), so a source is never
            # idle: a quiet one still sends heartbeats; a dead one holds until reassigned.
            marks = Watermark(float("inf"), clock=self.clock)
            marks.expect(range(s.partitions))
            self.window_watermarks.setdefault(partition, marks)
        return stage

    def _target(self, key: bytes) -> int:
        """The `predlog.pairs` partition of a model key: Kafka's default (murmur2) partitioner."""
        target = self._targets.get(key)
        if target is None:
            target = (murmur2(key) & 0x7FFFFFFF) % self.settings.partitions
            self._targets[key] = target
        return target

    async def _flush_outbox(self) -> None:
        outbox, self.outbox = self.outbox, defaultdict(list)
        producer = self.app.producer
        topic = self.settings.topic_pairs
        for target, records in sorted(outbox.items()):
            for value in encode_records(records):
                await producer.send(topic, None, value, target, None, None)

    async def _commit_point(self, kind: str, offsets: dict[int, int] | None = None) -> None:
        """A checkpoint of the stage `kind`, awaited to the end of its state step."""
        await (await self._begin_commit(kind, offsets))

    async def _begin_commit(self, kind: str,
                            offsets: dict[int, int] | None = None) -> asyncio.Future:
        """Send this batch's outputs, then begin its checkpoint (`Checkpoints.begin`: the
        future completes when the batch may be acked)."""
        if kind == "pair":
            await self._flush_outbox()
        return self.checkpoints.begin(kind, offsets)

    def _views_of(self, kind: str) -> list[TableView]:
        return [view for (k, _), views in list(self.views.items()) if k == kind
                for view in views]

    def _consumed(self, topic: str) -> None:
        self.metrics.consumed[topic] += 1

    def _decoded(self, topic: str) -> None:
        self.metrics.decoded[topic] += 1

    def _dead_lettered(self, reason: str, topic: str) -> None:
        self.metrics.add_dead_letter(reason, topic)

    async def _dead_letter(self, dl: DeadLetter) -> None:
        src = dl.source
        self.metrics.add_dead_letter(dl.reason, (src.topic or src.kind) if src else "")
        dl = self.redactor.dead_letter(dl)
        await self.dlq.send(value=dl.raw, headers=dead_letter_headers(dl))

    # -- stages ----------------------------------------------------------------------------------
    def _stage_task(self, name: str, bulk: BulkInput, handle, lock):
        """The loop of one stage: batches of records in, outputs delivered, then acked.

        `handle` returns None when the batch is complete, or the future of its commit
        (`_begin_commit`), which acks the batch when it completes.

        A stage that raises stops the worker (Kubernetes restarts it, and it resumes from
        the last commit) instead of going on past a batch that was never completed.
        """
        s = self.settings

        async def run() -> None:
            in_flight: asyncio.Future | None = None
            try:
                async for batch in bulk.batches(s.batch_size, s.batch_seconds, ack=False):
                    if lock is None:
                        done = await handle(batch)
                    else:
                        async with lock:
                            done = await handle(batch)
                    if done is None:  # completed in line
                        bulk.ack(batch)
                        continue
                    # Delivered in the background: ack when it is; meanwhile take the next
                    # batch, but never more than one commit behind.
                    done.add_done_callback(
                        lambda f, batch=batch: f.cancelled() or f.exception() or bulk.ack(batch))
                    if in_flight is not None:
                        await in_flight
                    in_flight = done
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("stage %s failed: stopping the worker", name)
                await self.app.crash(exc)

        run.__name__ = f"predlog_{name}"
        return run

    async def _pair_batch(self, batch) -> asyncio.Future:
        await self._ensure_stages()
        touched: set[int] = set()
        read: dict[int, int] = {}
        for msg in batch:
            self.metrics.consumed[msg.topic] += 1
            self.last_offsets[(msg.topic, msg.partition)] = msg.offset
            read[msg.partition] = msg.offset
            if self.checkpoints.replayed("pair", msg.partition, msg.offset):
                # in the recovered state already; it got the partition this far
                mark = self.views[("pair", msg.partition)][2].get("events")
                if mark is not None:
                    self.pair_watermark.update(msg.partition, mark)
                continue
            headers = _headers(msg)
            if dict(headers).get(KIND_HEADER) == b"label":
                label = decode_label_record(
                    msg.value or b"", fallback_time=_record_ns(msg),
                    coords=SourceCoords("kafka", msg.topic, msg.partition, msg.offset))
                if isinstance(label, DeadLetter):
                    await self._dead_letter(label)
                else:
                    self.metrics.decoded[msg.topic] += 1
                    self._pairing_stage(msg.partition)
                    self._join(msg.partition, label)
                continue
            source = dict(headers).get(SOURCE_TOPIC_HEADER)
            topic = source.decode() if source else msg.topic
            if source:
                headers = [(k, v) for k, v in headers if k != SOURCE_TOPIC_HEADER]
            item = decode_kafka_record(topic, msg.key, msg.value, headers,
                                       _record_ms(msg), partition=msg.partition,
                                       offset=msg.offset)
            if isinstance(item, DeadLetter):
                await self._dead_letter(item)
                continue
            self.metrics.decoded[msg.topic] += 1
            self.pair_watermark.update(msg.partition, item.event_time)
            stage = self._pairing_stage(msg.partition)
            touched.add(msg.partition)
            if item.kind is EventKind.FEEDBACK:
                for label in feedback_labels(item):
                    if isinstance(label, DeadLetter):  # a truth row that is not a label
                        await self._dead_letter(label)
                    else:
                        self._join(msg.partition, label)
                continue
            for outcome in stage.process(item):
                self._send_outcome(outcome, msg.partition)
                if isinstance(outcome, Pair):  # its rows wait for labels, as in replay
                    self._send_joined(msg.partition, stage.join_pair(outcome))
        for partition in touched:
            marks = self.views[("pair", partition)][2]
            mark = self.pair_watermark.max_of(partition)
            if mark is not None and marks.get("events") != mark:
                marks["events"] = mark
        await self._expire_pairs()
        return await self._begin_commit("pair", read)

    def _watermark(self, marks: Watermark) -> float:
        wm = marks.get()
        lag = self.settings.wall_clock_lag_seconds
        return max(wm, seconds_to_ns(self.clock() - lag)) if lag is not None else wm

    async def _tick(self) -> None:
        """Advance time without new input: expire pairs, close windows (idle streams)."""
        if self.app.rebalancing or not self.app.tables.recovery.completed.is_set():
            return
        try:
            async with self.pair_lock:
                await self._ensure_stages()
                await self._learn_positions()
                await self._tick_pairs()
            async with self.window_lock:
                await self._tick_windows()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # as a stage: stop the worker, never go on half-ticked
            log.exception("timer tick failed: stopping the worker")
            await self.app.crash(exc)

    async def _tick_pairs(self) -> None:
        await self._expire_pairs()
        # Watermark heartbeats: every stage-2 partition learns how far each stage-1
        # partition has got, also when no pair of its models came from there.
        for source, wm in list(self.expired_through.items()):
            if source in self.pairing and wm != float("-inf"):
                for target in range(self.settings.partitions):
                    self.outbox[target].append(encode_heartbeat(source, wm))
        await self._commit_point("pair")

    async def _tick_windows(self) -> None:
        results: dict[int, StepResult] = defaultdict(StepResult)
        for partition, stage in list(self.windowing.items()):
            marks = self.window_watermarks.get(partition)
            if marks is not None:
                stage.close_ready(self._watermark(marks), results[partition])
        if any(r.summaries for r in results.values()) or self.checkpoints.has_unsent_marks(
                "window"):
            await self._deliver(results)
            await self._commit_point("window")

    def _join(self, partition: int, label: Label) -> None:
        """A label into this partition's joiner; what it joins goes to stage 2."""
        self._send_joined(partition, self.pairing[partition].join_label(label))

    def _send_joined(self, partition: int, joined_labels) -> None:
        for joined in joined_labels:
            m = joined.prediction.model
            target = self._target(f"{m.namespace}|{m.model}".encode())
            self.outbox[target].append(encode_joined(
                joined, partition, self.expired_through.get(partition, float("-inf"))))

    async def _expire_pairs(self) -> None:
        """Resolve what the watermark passed, then let each partition promise that far."""
        wm = self._watermark(self.pair_watermark)
        for partition, stage in list(self.pairing.items()):
            for outcome in stage.expire(wm):
                self._send_outcome(outcome, partition)
            for label in stage.expire_labels(wm):
                self.metrics.add_unmatched_label(label.source)
            self.expired_through[partition] = wm

    def _send_outcome(self, outcome, partition: int) -> None:
        # The watermark sent along is how far this partition has *expired*, never more:
        # stage 2 must not close a window whose unanswered requests are still pending here.
        m = outcome.model
        wm = self.expired_through.get(partition, float("-inf"))
        target = self._target(f"{m.namespace}|{m.model}".encode())
        self.outbox[target].append(encode_outcome(outcome, partition, wm))

    async def _window_batch(self, batch) -> None:
        await self._ensure_stages()
        results: dict[int, StepResult] = defaultdict(StepResult)
        read: dict[int, int] = {}
        for msg in batch:
            self.last_offsets[(msg.topic, msg.partition)] = msg.offset
            read[msg.partition] = msg.offset
            stage = self._window_stage(msg.partition)
            marks = self.window_watermarks[msg.partition]
            replayed = self.checkpoints.replayed("window", msg.partition, msg.offset)
            for outcome, source, wm in decode_outcomes(msg.value):
                if wm != float("-inf"):
                    marks.update(source, wm)
                if replayed:  # in the recovered windows already: only its watermarks count
                    continue
                if isinstance(outcome, JoinedLabel):
                    self._add_joined(msg.partition, outcome)
                elif outcome is not None:
                    stage.add(outcome, results[msg.partition])
        for partition, stage in self.windowing.items():
            marks = self.window_watermarks.get(partition)
            if marks is not None:
                stage.close_ready(self._watermark(marks), results[partition])
        await self._deliver(results)
        await self._commit_point("window", read)

    def _add_joined(self, partition: int, joined: JoinedLabel) -> None:
        """Keep a joined label with its window (idempotent by request id and row)."""
        p = joined.prediction
        labels = self.views[("window", partition)][2]
        key = f"{p.window_id}|{p.request_id}|{p.row}"
        if key in labels:
            return
        labels[key] = joined_to_state(joined)
        self.monitoring.add_joined(joined)
        self.metrics.add_joined(joined)

    async def _deliver(self, results: dict[int, StepResult]) -> None:
        es = self.es_sink
        for partition, result in results.items():
            for pair in result.pairs:
                self.model_partition[self.metrics.key(pair)] = partition
                self.metrics.add_pair(pair)
                if es is not None:
                    es.add_pair(pair)
            for pair in result.late:
                self.metrics.add_late(pair)
            for orphan in result.orphans:
                self.metrics.add_orphan(orphan)
            reports = await self._reports() if result.summaries else {}
            for key, summary in result.summaries:
                await self._emit_summary(key, summary, reports.get(key.id),
                                         self.monitoring.new_references.pop(key.id, None))
                self.views[("window", partition)][3][key.id] = summary.to_builtins()
        for bkey, state in self.monitoring.take_bootstrap_changes():
            ns, model, _ = bkey.split("|", 2)
            views = self.views.get(("window", self._target(f"{ns}|{model}".encode())))
            if views is not None:  # (the model's partition, where its window just closed)
                views[5][bkey] = state
        # Each flush blocks (retrying) while its sink is down: the batch is not acked and
        # consumption waits — backpressure. Run in a thread to keep heartbeats going.
        # What a sink refuses for good is dead-lettered before the batch's commit point.
        health = self.metrics.sink_health
        if self.mlflow is not None and len(self.mlflow):
            from sinks.mlflow_sink import rejected_window  # mlflow is imported only if used

            models = {s.model for r in results.values() for _, s in r.summaries}
            await asyncio.to_thread(self.mlflow.flush)
            for summary, exc in self.mlflow.take_rejected():
                await self._dead_letter(rejected_window(summary, exc))
            for model in models:
                await self._compare_with_training(model)
            health.ok("mlflow")
        if es is not None and len(es):
            await asyncio.to_thread(es.flush)
            health.ok("elasticsearch")
            for rejection in es.take_rejected():
                await self._dead_letter(rejection.dead_letter())

    async def _compare_with_training(self, model: str) -> None:
        """`model_accuracy_degradation`; retried while MLflow is down, skipped if refused."""
        try:
            cmp = await asyncio.to_thread(self.mlflow.compare_with_training, model)
        except Exception as exc:  # permanent (the transient ones are retried in the sink)
            log.error("compare_with_training(%s) failed: %s", model, exc)
            return
        if cmp.get("status") == "ok":
            self.metrics.degradation[model] = cmp["degradation"]

    async def _reports(self) -> dict[str, str]:
        """Evidently HTML reports of the windows the monitoring picked, off the event loop."""
        frames, self.monitoring.report_frames = self.monitoring.report_frames, []
        if not frames:
            return {}
        from sinks.evidently_report import EvidentlyReportSink

        sink = EvidentlyReportSink(self.settings.reports_dir)
        paths = {key.id: str(sink.add(f"{key.namespace}-{key.model}-{key.version}-{key.node}-"
                                      f"{key.start // NS}", profile, frame))
                 for key, profile, frame in frames}
        await asyncio.to_thread(sink.flush)
        return paths

    async def _emit_summary(self, key: WindowKey, summary: WindowSummary,
                            report: str | None = None, reference: Any = None) -> None:
        summary = self.redactor.summary(summary)  # a copy when it leaves out feature stats
        self.metrics.add_summary(summary, key.end)
        if self.mlflow is not None:
            self.mlflow.add(summary, report, reference)
        if self.es_sink is not None:
            self.es_sink.add_summary(key, summary)
        await self.windows_topic.send(key=key.id.encode(),
                                      value=orjson.dumps(summary.to_builtins(), option=DUMPS))


def make_mlflow_sink(settings: Settings):
    if not settings.mlflow_tracking_uri:
        return None
    from agents.mlflow_auth import apply_mlflow_credentials, check_access
    from sinks.mlflow_sink import MlflowSink

    apply_mlflow_credentials(settings)
    check_access(settings)  # a refused password stops the worker here, not in a retry loop
    return MlflowSink(settings.mlflow_tracking_uri)




def make_es_sink(settings: Settings):
    if not settings.elasticsearch_url:
        return None
    from agents.elasticsearch_client import check_access, elasticsearch_client
    from sinks.elasticsearch import ElasticsearchSink

    client = elasticsearch_client(settings)
    check_access(client, settings)  # a refused password stops the worker here, not in retries
    redactor = make_redactor(settings)
    sink = ElasticsearchSink(client, index_template=settings.elasticsearch_index_template,
                             redact=redactor.document if redactor.active else None)
    return sink  # its index templates go in with its first flush (an outage may be on now)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    import mode.loop

    mode.loop.use("uvloop" if settings.event_loop == "uvloop" else "aio")
    worker = Worker(settings, es_sink=make_es_sink(settings))
    runner = faust.Worker(worker.app, loglevel=loglevel)
    # No terminal spinner: at --loglevel warning it sets the root logger to DEBUG, so every
    # debug call in Faust and aiokafka would build a log record (a third of the CPU).
    runner.spinner = None
    runner.execute_from_commandline()


def _task_stacks() -> str:
    """Where every asyncio task of the running loop waits, as text: its chain of awaits,
    outermost first. (`Task.print_stack` shows a suspended task's outermost coroutine
    only: the one the watchdog first caught said no more than "a stage waits".)"""
    import sys
    import threading
    import traceback

    lines = []
    for task in asyncio.all_tasks():
        lines.append(f"task {task.get_name()}:")
        lines += [f"  {where}" for where in _await_chain(task.get_coro())]
    # Work handed to threads (sink flushes: `asyncio.to_thread`) shows as a future above.
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        lines.append(f"thread {names.get(ident, ident)}:")
        lines += [f"  {line.strip()}" for line in traceback.format_stack(frame, limit=25)]
    return "\n".join(lines)


def _await_chain(coro: Any, limit: int = 40) -> list[str]:
    """`file:line in function` of each coroutine or generator a coroutine awaits, down to
    what it waits on (a future, a task)."""
    out = []
    while coro is not None and len(out) < limit:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:  # a future, a task, or a finished coroutine
            out.append(f"waits on {coro!r:.200}")
            break
        out.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return out


def _record_ms(msg: Any) -> int:
    """A consumed record's Kafka timestamp, int ms (Faust hands it out as float seconds)."""
    return round(msg.timestamp * 1000)


def _record_ns(msg: Any) -> int:
    """A consumed record's Kafka timestamp as event time: int ns."""
    return ms_to_ns(_record_ms(msg))
