"""External logger topics: Seldon v1 Kafka mode (no key) and Seldon v2 model topics are
re-keyed by request id into the events topic, paired and windowed."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from stream.decode.oip.inference_pb2 import ModelInferRequest, ModelInferResponse
from tests.fixtures.seldon_stream import flush_records
from tests.integration.workers import PARTITIONS, Deployment

T0 = 1793491200.0  # 2026-11-01T00:00:00Z, a window boundary
WINDOW = 300.0


def _v1_kafka_mode(i: int) -> list[tuple]:
    """A Seldon v1 executor's Kafka logger: bare header names, no key, record time."""
    rid, t = f"v1-{i}", T0 + 6 * i
    common = [("requestid", rid.encode()), ("modelid", b"model"),
              ("inferenceservicename", b"churn"), ("namespace", b"prod"),
              ("endpoint", b"default"), ("content-type", b"application/json")]
    req = ([("type", b"io.seldon.serving.inference.request"), *common],
           b'{"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0]]}}', t)
    resp = ([("type", b"io.seldon.serving.inference.response"), *common],
            b'{"data": {"names": ["p"], "ndarray": [[0.7]]}}', t + 0.05)
    return [req, resp]


def _v2(i: int) -> tuple[bytes, bytes, bytes, float]:
    rid, t = f"v2-{i}", T0 + 7 * i
    req = ModelInferRequest(model_name="iris", model_version="1", id=rid)
    req.inputs.add(name="x", datatype="FP32", shape=[1, 2]).contents.fp32_contents.extend(
        [0.5, 1.5])
    resp = ModelInferResponse(model_name="iris", model_version="1", id=rid)
    resp.outputs.add(name="predict", datatype="INT64", shape=[1, 1]).contents \
        .int64_contents.append(1)
    return rid.encode(), req.SerializeToString(), resp.SerializeToString(), t


def _produce_v2(producer: KafkaProducer, prefix: str, n: int) -> None:
    """`n` requests and their responses on a Seldon v2 model's inputs/outputs topics."""
    for i in range(n):
        key, req, resp, t = _v2(i)
        producer.send(f"{prefix}.inputs", key=key, value=req, timestamp_ms=int(t * 1000))
        producer.send(f"{prefix}.outputs", key=key, value=resp, timestamp_ms=int(t * 1000 + 30))
    producer.flush()


def test_v1_kafka_mode_and_v2_model_topics(stack):
    dep = Deployment(stack, window=WINDOW, ttl=30.0, lateness=10.0)
    v1_topic = f"it{dep.suffix}.seldon"
    v2_prefix = f"seldon.it{dep.suffix}.model.iris"
    dep.extra_env["PREDLOG_EXTERNAL_TOPICS_PATTERN"] = (
        f"^(it{dep.suffix}\\.seldon|seldon\\.it{dep.suffix}\\.model\\..+\\.(inputs|outputs))$")
    dep.create_topics()
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    try:
        # The worker subscribes to the matching topics that exist when it starts.
        admin.create_topics([NewTopic(v1_topic, 2, 1), NewTopic(f"{v2_prefix}.inputs", 2, 1),
                             NewTopic(f"{v2_prefix}.outputs", 2, 1)])
        dep.start_worker()
        for i in range(40):
            for headers, value, t in _v1_kafka_mode(i):
                producer.send(v1_topic, value=value, headers=headers,
                              timestamp_ms=int(t * 1000))
        _produce_v2(producer, v2_prefix, 30)

        # Every record re-keyed into the events topic before time moves on.
        consumer = KafkaConsumer(dep.topics["events"], bootstrap_servers=stack.kafka_bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=1000)
        keys: list[bytes] = []
        deadline = time.monotonic() + 120
        try:
            while len(keys) < 140 and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=1000).values():
                    keys += [r.key for r in batch]
        finally:
            consumer.close()
        assert len(keys) == 140, f"{len(keys)} of 140 records re-keyed"
        assert {k.decode().split("-")[0] for k in keys} == {"v1", "v2"}

        dep.produce(flush_records(T0 + 3600, PARTITIONS), partitions=True)
        summaries = dep.windows(2)
    finally:
        producer.close()
        admin.close()
        dep.stop()
    by_model = {s["model"]: s for s in summaries}
    assert {"churn", "iris"} <= by_model.keys(), [
        (s["model"], s["namespace"], s["window_start"], s["requests"]) for s in summaries]
    assert by_model["churn"]["requests"] == 40 and by_model["churn"]["errors"] == 0
    assert by_model["churn"]["namespace"] == "prod"
    assert by_model["iris"]["requests"] == 30 and by_model["iris"]["errors"] == 0
    assert by_model["iris"]["namespace"] == f"it{dep.suffix}"
    assert by_model["iris"]["window_start"] == "2026-11-01T00:00:00Z"


def test_a_model_topic_created_while_the_worker_runs_is_consumed(stack):
    """Seldon v2 creates a model's topics when the model is deployed: a running worker
    picks them up (pattern subscription, metadata refresh) without a restart."""
    dep = Deployment(stack, window=WINDOW, ttl=30.0, lateness=10.0)
    v2_prefix = f"seldon.it{dep.suffix}.model.late"
    dep.extra_env["PREDLOG_EXTERNAL_TOPICS_PATTERN"] = (
        f"^seldon\\.it{dep.suffix}\\.model\\..+\\.(inputs|outputs)$")
    dep.extra_env["PREDLOG_TOPIC_REFRESH_SECONDS"] = "5"
    dep.create_topics()
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    try:
        dep.start_worker()  # no matching topic exists yet
        time.sleep(2)
        created = time.monotonic()
        admin.create_topics([NewTopic(f"{v2_prefix}.inputs", 2, 1),
                             NewTopic(f"{v2_prefix}.outputs", 2, 1)])
        _produce_v2(producer, v2_prefix, 25)
        consumer = KafkaConsumer(dep.topics["events"], bootstrap_servers=stack.kafka_bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=1000)
        n = 0
        try:
            while n < 50 and time.monotonic() - created < 60:
                n += sum(len(b) for b in consumer.poll(timeout_ms=1000).values())
        finally:
            consumer.close()
        assert n == 50, f"{n} of 50 records of the new topics re-keyed within 60 s"
        dep.produce(flush_records(T0 + 3600, PARTITIONS), partitions=True)
        summaries = dep.windows(1)
    finally:
        producer.close()
        admin.close()
        dep.stop()
    late = [s for s in summaries if s["model"] == "late"]  # the topic names the model
    assert len(late) == 1 and late[0]["requests"] == 25 and late[0]["errors"] == 0
