"""Kafka authentication against the stack's SASL_PLAINTEXT listener (PLAIN, user `predlog`).

Every Kafka client predlog builds takes its security settings from the one settings object
(`agents/kafka_auth.py`): the worker (Faust), the ingest gateway (aiokafka), and
`replay --to-kafka` / the Kafka replay source / topic discovery (kafka-python).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic

from agents.kafka_auth import aiokafka_kwargs, kafka_python_kwargs
from agents.replay import SAMPLE
from agents.settings import Settings
from tests.fixtures.seldon_stream import flush_records, generate, oracle
from tests.integration.test_worker import _check_against_oracle
from tests.integration.workers import PARTITIONS, Deployment, free_port, wait_ready

WINDOW = 300.0


def _sasl_env(stack, password: str | None = None) -> dict[str, str]:
    return {"PREDLOG_KAFKA_BOOTSTRAP": stack.kafka_sasl_bootstrap,
            "PREDLOG_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "PREDLOG_KAFKA_SASL_MECHANISM": "PLAIN",
            "PREDLOG_KAFKA_USERNAME": "predlog",
            "PREDLOG_KAFKA_PASSWORD": password or stack.kafka_sasl_password()}


def _settings(stack, password: str | None = None, **more) -> Settings:
    env = _sasl_env(stack, password)
    return Settings(kafka_bootstrap=env["PREDLOG_KAFKA_BOOTSTRAP"],
                    kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
                    kafka_username="predlog", kafka_password=env["PREDLOG_KAFKA_PASSWORD"],
                    **more)


def test_the_sasl_listener_refuses_a_wrong_password(stack, caplog):
    bad = _settings(stack, password="not-the-password")

    async def start() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bad.kafka_bootstrap,
                                    request_timeout_ms=5000, **aiokafka_kwargs(bad))
        try:
            await producer.start()
        finally:
            await producer.stop()

    with pytest.raises(KafkaConnectionError):  # aiokafka logs why: the broker said no
        asyncio.run(start())
    assert "SaslAuthenticationFailed" in caplog.text
    good = _settings(stack)

    async def start_good() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=good.kafka_bootstrap,
                                    **aiokafka_kwargs(good))
        await producer.start()
        await producer.stop()

    asyncio.run(start_good())


def test_replay_to_kafka_and_back_over_sasl(stack):
    from agents.replay_sources import KafkaSource
    from agents.to_kafka import republish_files

    topic = f"it.sasl.{uuid.uuid4().hex[:8]}"
    settings = _settings(stack, topic_events=topic, topic_dlq=f"{topic}.dlq")
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_sasl_bootstrap,
                             **kafka_python_kwargs(settings))
    try:
        admin.create_topics([NewTopic(topic, PARTITIONS, 1), NewTopic(f"{topic}.dlq", 1, 1)])
    finally:
        admin.close()
    sent = republish_files([SAMPLE], settings)
    assert sum(sent.events.values()) > 100
    # the republished event times are int ns; the source's range is in seconds
    source = KafkaSource(settings.kafka_bootstrap, topic, sent.first_time / 10**9 - 1,
                         sent.last_time / 10**9 + 1, consumer_config=kafka_python_kwargs(settings))
    items = list(source.iter_events())
    assert source.records == sum(sent.events.values())
    assert len(items) == source.records


def test_ingest_over_sasl(stack):
    topic = f"it.sasl.ingest.{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = dict(os.environ, **_sasl_env(stack), PREDLOG_TOPIC_EVENTS=topic,
               PREDLOG_TOPIC_DLQ=f"{topic}.dlq")
    proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "ingest", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/readyz", proc, 30, "ingest")
        puid = uuid.uuid4().hex
        headers = {"Ce-Specversion": "1.0", "Ce-Id": uuid.uuid4().hex,
                   "Ce-Source": "http://iris:8000/", "Ce-Requestid": puid,
                   "Ce-Type": "io.seldon.serving.inference.request", "Ce-Modelid": "classifier",
                   "Ce-Inferenceservicename": "iris", "Ce-Namespace": "prod",
                   "Ce-Time": "2026-11-01T00:00:00Z", "Content-Type": "application/json"}
        r = httpx.post(url, headers=headers, content=b'{"data": {"ndarray": [[1.0, 2.0]]}}',
                       timeout=10)
        assert r.status_code == 202, r.text
        consumer = KafkaConsumer(topic, bootstrap_servers=stack.kafka_sasl_bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=10000,
                                 **kafka_python_kwargs(_settings(stack)))
        try:
            keys = [rec.key for rec in consumer]
        finally:
            consumer.close()
        assert keys == [puid.encode()]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_worker_over_sasl_matches_the_oracle(stack):
    stream = generate(n=400, seconds=600.0)
    dep = Deployment(stack, window=WINDOW, ttl=30.0, lateness=10.0, extra_env=_sasl_env(stack))
    dep.create_topics()  # the test's own clients use the plaintext listener of the same broker
    try:
        dep.start_worker()
        dep.produce(stream.records)
        dep.produce(flush_records(stream.end_time + 3600, PARTITIONS), partitions=True)
        expected = oracle(stream, WINDOW)
        _check_against_oracle(dep.windows(len(expected)), expected)
    finally:
        dep.stop()
