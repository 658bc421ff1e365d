"""Stage 0 of the worker: external logger topics → `predlog.events`, keyed by request id.

Seldon v1 executors in Kafka mode (no key), MLServer (`mlserver-input|output`) and
Seldon v2 (`seldon.<ns>.model.<model>.inputs|outputs`, one pair of topics per model)
log to topics predlog does not own, and Seldon v2 creates a new pair whenever a model is
deployed. This stage subscribes by *pattern* (`Settings.external_topics_pattern`, plus
the labels topic) with its own aiokafka consumer in the group `<consumer_group>-rekey`:
the client refreshes its topic metadata every `topic_refresh_seconds` and the group
rebalances onto a new matching topic, so a model deployed after the worker started is
read without a restart. (Faust's own pattern subscription does not do this, and adding
topics to a running Faust app left their partitions assigned but unfetched.)

Each record is checked with the same decoders the pair stage uses: an undecodable one
becomes a dead letter (`predlog.dlq`, reason and source in headers); the others are
re-published unchanged to `predlog.events` with the request id as key, the original
timestamp, and the source topic in a header (labels: a `predlog-kind: label` header).
The stage is stateless, so its commit point is simple: a batch's records are
delivered (producer flushed) before its offsets are committed. A crash in between
re-publishes them; the pair stage ignores a request, response or label it has seen.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from agents.kafka_auth import aiokafka_kwargs
from agents.settings import Settings, make_redactor
from stream.deadletters import dead_letter_headers
from stream.decode.kafka_records import decode_kafka_record
from stream.decode.labels import decode_label_record
from stream.events import DeadLetter, SourceCoords
from stream.eventtime import ms_to_ns

log = logging.getLogger("predlog.rekey")
SOURCE_TOPIC_HEADER = "predlog-source-topic"
KIND_HEADER = "predlog-kind"


def subscription_pattern(settings: Settings) -> str:
    """The external logger topics and the labels topic, as one regular expression.

    >>> p = re.compile(subscription_pattern(Settings()))
    >>> [bool(p.match(t)) for t in ("seldon", "seldon.prod.model.iris.inputs",
    ...                             "predlog.labels", "predlog.events", "seldonx")]
    [True, True, True, False, False]
    """
    return f"(?:{settings.external_topics_pattern})|(?:^{re.escape(settings.topic_labels)}$)"


class Rekeyer:
    """Reads the external topics by pattern and re-publishes them keyed by request id.

    `on_consumed(topic)`, `on_decoded(topic)` and `on_dead_letter(reason, topic)` report
    to the worker's metrics. `run()` loops until cancelled; any other failure propagates (the worker
    stops and is restarted from the last commit).
    """

    def __init__(self, settings: Settings, *, on_consumed: Callable[[str], None],
                 on_decoded: Callable[[str], None],
                 on_dead_letter: Callable[[str, str], None]) -> None:
        self.settings = settings
        self.on_consumed = on_consumed
        self.on_decoded = on_decoded
        self.on_dead_letter = on_dead_letter
        self.redactor = make_redactor(settings)
        self.assigned: frozenset[str] = frozenset()  # topics with partitions assigned here

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.errors import (
            CommitFailedError,
            IllegalGenerationError,
            IllegalStateError,
            RebalanceInProgressError,
            UnknownMemberIdError,
        )

        lost_to_rebalance = (CommitFailedError, IllegalGenerationError, IllegalStateError,
                             RebalanceInProgressError, UnknownMemberIdError)

        s = self.settings
        auth = aiokafka_kwargs(s)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap, group_id=f"{s.consumer_group}-rekey",
            enable_auto_commit=False, auto_offset_reset="earliest",
            metadata_max_age_ms=int(s.topic_refresh_seconds * 1000), **auth)
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=20,
                                    max_batch_size=512 * 1024, **auth)
        consumer.subscribe(pattern=subscription_pattern(s))
        await producer.start()
        try:
            await consumer.start()
            try:
                while True:
                    fetched = await consumer.getmany(timeout_ms=1000,
                                                     max_records=s.batch_size)
                    self.assigned = frozenset(tp.topic for tp in consumer.assignment())
                    if not fetched:
                        continue
                    for records in fetched.values():
                        for record in records:
                            await self._route(producer, record)
                    await producer.flush()  # delivered, then committed
                    # Only partitions still assigned: a rebalance while the batch was routed
                    # gave the others to a worker that reads them again from the last
                    # commit (aiokafka refuses a commit of one with IllegalStateError,
                    # which stopped the worker: seen in the chaos harness's 1M-event run).
                    held = consumer.assignment()
                    offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items()
                               if tp in held}
                    if len(offsets) < len(fetched):
                        log.warning("re-key offsets of %d revoked partitions not committed: "
                                    "their next owner reads them again",
                                    len(fetched) - len(offsets))
                    try:
                        if offsets:
                            await consumer.commit(offsets)
                    except lost_to_rebalance as exc:
                        # The group moved the partitions on (a worker joined or left): their
                        # next owner re-publishes from the last commit, and the pair stage
                        # ignores what it has seen. Stopping the worker for it made every
                        # rebalance a crash (the chaos harness saw both workers exit).
                        log.warning("re-key offsets not committed (%s): the partitions' next "
                                    "owner reads them again", type(exc).__name__)
            finally:
                await consumer.stop()
        finally:
            await producer.stop()

    async def _route(self, producer: Any, record: Any) -> None:
        s = self.settings
        topic = record.topic
        self.on_consumed(topic)
        headers = list(record.headers or ())
        coords = SourceCoords("kafka", topic, record.partition, record.offset)
        if topic == s.topic_labels:
            label = decode_label_record(record.value or b"",
                                        fallback_time=ms_to_ns(record.timestamp), coords=coords)
            if isinstance(label, DeadLetter):
                await self._dead_letter(producer, label)
                return
            self.on_decoded(topic)
            await producer.send(s.topic_events, key=label.request_id.encode(),
                                value=record.value, headers=[(KIND_HEADER, b"label")],
                                timestamp_ms=record.timestamp)
            return
        item = decode_kafka_record(topic, record.key, record.value, headers,
                                   record.timestamp, partition=record.partition,
                                   offset=record.offset)
        if isinstance(item, DeadLetter):
            await self._dead_letter(producer, item)
            return
        self.on_decoded(topic)
        await producer.send(s.topic_events, key=item.request_id.encode(), value=record.value,
                            headers=[*headers, (SOURCE_TOPIC_HEADER, topic.encode())],
                            timestamp_ms=record.timestamp)

    async def _dead_letter(self, producer: Any, dl: DeadLetter) -> None:
        self.on_dead_letter(dl.reason, dl.source.topic if dl.source else "")
        dl = self.redactor.dead_letter(dl)
        await producer.send(self.settings.topic_dlq, value=dl.raw,
                            headers=dead_letter_headers(dl))


async def run_forever(rekeyer: Rekeyer, on_crash: Callable[[BaseException], Any]) -> None:
    """`rekeyer.run()`, reporting a failure (other than cancellation) to `on_crash`."""
    try:
        await rekeyer.run()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("re-key stage failed: stopping the worker")
        await on_crash(exc)
