"""`predlog ingest` as a real process against the real Kafka broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from kafka import KafkaConsumer

from tests.integration.workers import free_port, wait_ready

TOKEN = "test-token-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def ingest(stack):
    suffix = uuid.uuid4().hex[:8]
    port = free_port()
    topics = {"events": f"it.events.{suffix}", "dlq": f"it.dlq.{suffix}"}
    env = dict(os.environ, PREDLOG_KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
               PREDLOG_TOPIC_EVENTS=topics["events"], PREDLOG_TOPIC_DLQ=topics["dlq"],
               PREDLOG_INGEST_TOKEN=TOKEN, PREDLOG_INGEST_MAX_BODY_BYTES="20000")
    proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "ingest", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/readyz", proc, 30, "ingest")
    except RuntimeError as exc:
        proc.kill()
        pytest.fail(str(exc))
    yield url, topics, stack.kafka_bootstrap, proc
    proc.terminate()  # SIGTERM: graceful shutdown, producer flushed, exit 0
    assert proc.wait(timeout=30) == 0, proc.stdout.read().decode()[-2000:]


def _consume(bootstrap, topic, n, timeout=30, until=None):
    """The topic's first `n` records, or all read until one satisfies `until`."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=f"it-{uuid.uuid4().hex[:8]}", consumer_timeout_ms=2000)
    got, deadline = [], time.monotonic() + timeout
    try:
        while len(got) < n and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                got.extend(batch)
            if until is not None and any(until(rec) for rec in got):
                break
    finally:
        consumer.close()
    return got


def _seldon_headers(kind, puid):
    return {
        "Ce-Specversion": "1.0", "Ce-Id": uuid.uuid4().hex, "Ce-Source": "http://iris:8000/",
        "Ce-Type": f"io.seldon.serving.{kind}", "Ce-Requestid": puid,
        "Ce-Modelid": "classifier", "Ce-Inferenceservicename": "iris", "Ce-Namespace": "prod",
        "Ce-Endpoint": "default", "Ce-Time": "2026-11-01T00:00:00.123456789Z",
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}",
    }


def test_request_response_feedback_share_one_partition(ingest):
    url, topics, bootstrap, _ = ingest
    puid = uuid.uuid4().hex
    bodies = {
        "inference.request": {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0]]}},
        "inference.response": {"data": {"names": ["p"], "ndarray": [[0.7]]}},
        "feedback": {"request": {"data": {"ndarray": [[1.0, 2.0]]}},
                     "truth": {"data": {"ndarray": [[1]]}}, "reward": 1},
    }
    for kind, body in bodies.items():
        r = httpx.post(f"{url}/", headers=_seldon_headers(kind, puid),
                       content=json.dumps(body).encode(), timeout=10)
        assert r.status_code == 202, r.text
        assert r.json() == {"accepted": puid}
    records = _consume(bootstrap, topics["events"], 3)
    assert len(records) == 3
    assert {rec.partition for rec in records} == {records[0].partition}
    assert {rec.key for rec in records} == {puid.encode()}
    types = [dict(rec.headers)["ce_type"].decode() for rec in records]
    assert types == [f"io.seldon.serving.{k}" for k in bodies]
    assert [json.loads(rec.value) for rec in records] == list(bodies.values())
    assert all(dict(rec.headers)["ce_requestid"] == puid.encode() for rec in records)


def test_structured_mode_is_accepted(ingest):
    url, topics, bootstrap, _ = ingest
    event = {"specversion": "1.0", "id": "k1", "source": "kserve", "type":
             "org.kubeflow.serving.inference.request", "inferenceservicename": "sk",
             "time": "2026-11-01T00:00:00Z", "datacontenttype": "application/json",
             "data": {"instances": [[1, 2, 3]]}}
    r = httpx.post(url, content=json.dumps(event).encode(), timeout=10, headers={
        "Content-Type": "application/cloudevents+json", "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": "k1"}


def test_undecodable_event_is_refused_and_dead_lettered(ingest):
    url, topics, bootstrap, _ = ingest
    headers = _seldon_headers("inference.request", "bad-1")
    bad = {b'{"data": {"tensor": {"shape": [2, 2]': "invalid_json",
           b'{"data": {"tensor": {"shape": [2, 2], "values": [1]}}}': "bad_shape"}
    for body, reason in bad.items():
        r = httpx.post(url, headers=headers, content=body, timeout=10)
        assert r.status_code == 400 and r.json()["error"] == reason, r.text
    no_envelope = {k: v for k, v in headers.items() if k != "Ce-Source"}
    r = httpx.post(url, headers=no_envelope, content=b"{}", timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "invalid_cloudevent", r.text
    records = _consume(bootstrap, topics["dlq"], 3)
    got = {rec.value: dict(rec.headers) for rec in records}
    for body, reason in bad.items():
        assert got[body]["predlog-dlq-reason"].decode() == reason
        assert got[body]["predlog-dlq-source"] == b"http"
        assert got[body]["ce-requestid"] == b"bad-1"  # original headers kept
    assert got[b"{}"]["predlog-dlq-reason"] == b"invalid_cloudevent"


def test_missing_or_wrong_token_is_401(ingest):
    url, *_ = ingest
    headers = _seldon_headers("inference.request", "p")
    del headers["Authorization"]
    assert httpx.post(url, headers=headers, content=b"{}", timeout=10).status_code == 401
    headers["Authorization"] = "Bearer nope"
    assert httpx.post(url, headers=headers, content=b"{}", timeout=10).status_code == 401


def test_oversized_body_is_413_and_dead_lettered(ingest):
    url, topics, bootstrap, _ = ingest
    body = json.dumps({"data": {"ndarray": [[1.0] * 5000]}}).encode()
    assert len(body) > 20000
    r = httpx.post(url, headers=_seldon_headers("inference.request", "big"), content=body,
                   timeout=10)
    assert r.status_code == 413
    reasons = [dict(rec.headers)["predlog-dlq-reason"] for rec in
               _consume(bootstrap, topics["dlq"], 4)]
    assert b"payload_too_large" in reasons


def test_oversized_chunked_body_without_a_length_is_413(ingest):
    """No Content-Length to check up front: the limit holds while the body is read."""
    url, topics, bootstrap, _ = ingest

    def chunks():
        for _ in range(30):
            yield b"x" * 1000

    r = httpx.post(url, headers=_seldon_headers("inference.request", "chunked"),
                   content=chunks(), timeout=10)
    assert r.status_code == 413, r.text

    def chunked_too_large(rec):
        h = dict(rec.headers)
        return (h.get("predlog-dlq-reason") == b"payload_too_large"
                and b"body over limit" in h.get("predlog-dlq-detail", b""))

    records = _consume(bootstrap, topics["dlq"], 1000, until=chunked_too_large)
    assert any(chunked_too_large(rec) for rec in records), [dict(r.headers) for r in records]


def test_other_paths_and_methods(ingest):
    url, *_ = ingest
    assert httpx.get(f"{url}/nope", timeout=5).status_code == 404
    r = httpx.put(f"{url}/healthz", timeout=5)
    assert r.status_code == 405 and "POST" in r.headers["allow"]


def test_health_ready_and_metrics(ingest):
    url, *_ = ingest
    assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    text = httpx.get(f"{url}/metrics", timeout=5).text
    assert 'predlog_ingest_events_accepted_total{event_type="request"}' in text
    assert 'predlog_ingest_events_rejected_total{reason="unauthorized"}' in text
