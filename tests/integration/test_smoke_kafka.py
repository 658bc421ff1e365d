"""Smoke test for the local Kafka (deploy/stack/kafka.sh): a real produce/consume round trip.

Each test makes its own topic, sends one record with key, value and headers, and reads it
back through a consumer group, once with kafka-python and once with aiokafka.
Start the broker first: deploy/stack/stack.sh up kafka
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pytest

TIMEOUT_S = 60
PARTITIONS = 3


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def bootstrap(stack) -> str:
    host, port = stack.kafka_bootstrap.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        pytest.fail(
            f"no Kafka at {stack.kafka_bootstrap} ({exc}); run deploy/stack/stack.sh up kafka",
            pytrace=False,
        )
    return stack.kafka_bootstrap


def test_round_trip_kafka_python(bootstrap: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = _unique("predlog-smoke-sync")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
        # CreateTopics answers once the controller committed; the broker's metadata follows.
        deadline = time.monotonic() + TIMEOUT_S
        while topic not in admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} not in metadata after {TIMEOUT_S}s"
            time.sleep(0.2)
        _round_trip_kafka_python(bootstrap, topic)
    finally:
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()


def _round_trip_kafka_python(bootstrap: str, topic: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    key, value = b"model-7", b'{"prediction": 0.93}'
    headers = [("trace-id", b"abc123"), ("schema", b"v1")]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=30_000)
    try:
        sent = producer.send(topic, key=key, value=value, headers=headers).get(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=10)
    assert sent.topic == topic and 0 <= sent.partition < PARTITIONS and sent.offset == 0

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=_unique("predlog-smoke-group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        records = []
        deadline = time.monotonic() + TIMEOUT_S
        while not records and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        assert records, f"nothing consumed from {topic} within {TIMEOUT_S}s"
        consumer.commit()
    finally:
        consumer.close()

    assert len(records) == 1
    rec = records[0]
    assert (rec.topic, rec.partition, rec.offset) == (topic, sent.partition, sent.offset)
    assert rec.key == key
    assert rec.value == value
    assert list(rec.headers) == headers


async def test_round_trip_aiokafka(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = _unique("predlog-smoke-async")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]
        )
        # CreateTopics answers once the controller committed; the broker's metadata follows.
        deadline = time.monotonic() + TIMEOUT_S
        while topic not in await admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} not in metadata after {TIMEOUT_S}s"
            await asyncio.sleep(0.2)
        await _round_trip_aiokafka(bootstrap, topic)
    finally:
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()


async def _round_trip_aiokafka(bootstrap: str, topic: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    key, value = b"model-8", b'{"prediction": 0.12}'
    headers = [("trace-id", b"def456"), ("schema", b"v1")]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=30_000)
    await producer.start()
    try:
        sent = await asyncio.wait_for(
            producer.send_and_wait(topic, value=value, key=key, headers=headers), TIMEOUT_S
        )
    finally:
        await producer.stop()
    assert sent.topic == topic and 0 <= sent.partition < PARTITIONS and sent.offset == 0

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=_unique("predlog-smoke-group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        rec = await asyncio.wait_for(consumer.getone(), TIMEOUT_S)
        await consumer.commit()
    finally:
        await consumer.stop()

    assert (rec.topic, rec.partition, rec.offset) == (topic, sent.partition, sent.offset)
    assert rec.key == key
    assert rec.value == value
    assert list(rec.headers) == headers
