"""The re-key stage's loop against fake clients: a partition revoked while its batch was
routed is not committed, and does not stop the worker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiokafka
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from agents.rekey import Rekeyer
from agents.settings import Settings

KEPT, LOST = TopicPartition("seldon", 0), TopicPartition("seldon", 1)


class FakeConsumer:
    """One fetch of both partitions, then the loop is cancelled; commits refuse a
    partition not assigned, as aiokafka's do."""

    def __init__(self, *args, **kwargs) -> None:
        self.held, self.commits, self.fetches = {KEPT, LOST}, [], 0

    def subscribe(self, pattern) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def assignment(self):
        return set(self.held)

    async def getmany(self, timeout_ms, max_records):
        self.fetches += 1
        if self.fetches > 1:
            raise asyncio.CancelledError  # end of the test
        return {tp: [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=7,
                                     key=b"r1", value=b"not json", headers=[],
                                     timestamp=1_700_000_000_000)]
                for tp in (KEPT, LOST)}

    async def commit(self, offsets) -> None:
        if any(tp not in self.held for tp in offsets):
            raise IllegalStateError("Partition is not assigned")
        self.commits.append(dict(offsets))


class FakeProducer:
    def __init__(self, consumer: FakeConsumer) -> None:
        self.consumer, self.sent = consumer, []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic, **kwargs) -> None:
        self.sent.append(topic)

    async def flush(self) -> None:
        self.consumer.held = {KEPT}  # a rebalance while the batch was routed


def test_a_partition_revoked_while_routing_is_not_committed(monkeypatch) -> None:
    consumer = FakeConsumer()
    producer = FakeProducer(consumer)
    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", lambda *a, **kw: consumer)
    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", lambda *a, **kw: producer)
    dead: list = []
    rekeyer = Rekeyer(Settings(), on_consumed=lambda t: None, on_decoded=lambda t: None,
                      on_dead_letter=lambda reason, topic: dead.append(reason))
    with pytest.raises(asyncio.CancelledError):  # only the test's end stops it
        asyncio.run(rekeyer.run())
    assert producer.sent == ["predlog.dlq", "predlog.dlq"] and len(dead) == 2
    assert consumer.commits == [{KEPT: 8}]  # LOST's next owner reads it again
