"""Redaction on a real worker: marker values in redacted features (hashed, dropped) and in a
redacted header reach neither Elasticsearch, nor `predlog.dlq`, nor the worker's log; an
unredacted feature does reach Elasticsearch, and the window's statistics are computed on the
original values."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import orjson
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer

from tests.fixtures.seldon_stream import flush_records, kafka_ce_headers
from tests.integration.workers import PARTITIONS, Deployment

T0 = 1793491200.0  # 2026-11-01T00:00:00Z, a window boundary
KEY = "it-redaction-key"
N = 20


def _records(n: int) -> list[tuple]:
    out = []
    for i in range(n):
        rid, t = f"red-{i}", T0 + 5 * i
        body = {"data": {"names": ["email", "ssn", "salary", "age"],
                         "ndarray": [[f"MARKERMAIL{i}@example.org", f"MARKERSSN{i}",
                                      987654.0 + i, 30.0 + i]]}}
        out.append((rid.encode(), json.dumps(body).encode(),
                    kafka_ce_headers("io.seldon.serving.inference.request", "it", "loan",
                                     "clf", rid, t)))
        out.append((rid.encode(), b'{"data": {"names": ["p"], "ndarray": [[0.25]]}}',
                    kafka_ce_headers("io.seldon.serving.inference.response", "it", "loan",
                                     "clf", rid, t + 0.05)))
    bad = kafka_ce_headers("io.seldon.serving.inference.request", "it", "loan", "clf",
                           "red-bad", T0 + 1)
    out.append((b"red-bad", b'{"data": {"ndarray": [["MARKERDLQ"',
                [*bad, ("x-user-id", b"MARKERHEADER")]))
    return out


def test_marker_values_leave_the_worker_redacted(stack):
    dep = Deployment(stack, window=300.0, ttl=30.0, lateness=10.0)
    dep.extra_env.update({"PREDLOG_REDACT_HASH": "features.email,features.salary",
                          "PREDLOG_REDACT_DROP": "features.ssn",
                          "PREDLOG_REDACT_MASK": "headers.x-user-id",
                          "PREDLOG_REDACT_KEY": KEY})
    dep.create_topics()
    es = Elasticsearch(stack.elasticsearch_url, request_timeout=30)
    index = f"it{dep.suffix}-predictions-*"
    try:
        dep.start_worker()
        dep.produce(_records(N))
        dep.produce(flush_records(T0 + 3600, PARTITIONS), partitions=True)
        summaries = [s for s in dep.windows(1) if s["model"] == "loan"]
        deadline = time.monotonic() + 60
        while True:
            es.indices.refresh(index=index, ignore_unavailable=True)
            hits = es.search(index=index, size=100, query={"term": {"model_name": "loan"}},
                             ignore_unavailable=True)["hits"]["hits"]
            if len(hits) >= N or time.monotonic() > deadline:
                break
            time.sleep(1)
        es.indices.refresh(index="predlog-windows-*")
        window_docs = es.search(index="predlog-windows-*", size=10, query={"bool": {"filter": [
            {"term": {"model": "loan"}}, {"term": {"namespace": "it"}}]}})["hits"]["hits"]
        consumer = KafkaConsumer(dep.topics["dlq"], bootstrap_servers=stack.kafka_bootstrap,
                                 auto_offset_reset="earliest", group_id=None,
                                 consumer_timeout_ms=5000)
        dead = list(consumer)
        consumer.close()
    finally:
        dep.stop()
        es.indices.delete(index=index, ignore_unavailable=True)
        es.close()
    log = b"".join(Path(f.name).read_bytes() for f in dep.logs)

    assert len(hits) == N
    docs = {h["_source"]["request_id"]: h["_source"] for h in hits}
    text = json.dumps(docs)
    assert "MARKERMAIL" not in text and "MARKERSSN" not in text and "98765" not in text
    oracle = hmac.new(KEY.encode(), b"MARKERMAIL3@example.org", hashlib.sha256).hexdigest()[:32]
    salary = hmac.new(KEY.encode(), b"987657.0", hashlib.sha256).hexdigest()[:32]
    assert docs["red-3"]["features"] == {"email": oracle, "salary": salary,
                                         "age": 33.0}  # ssn dropped
    # the window summaries (Elasticsearch, predlog.windows) carry no stats of redacted features
    assert window_docs and "98765" not in json.dumps(window_docs)
    assert "98765" not in json.dumps(summaries)

    assert len(dead) == 1
    assert b"MARKERDLQ" not in dead[0].value
    value = orjson.loads(dead[0].value)
    assert value["length"] == len(b'{"data": {"ndarray": [["MARKERDLQ"')
    headers = dict(dead[0].headers)
    assert headers["x-user-id"] == b"***" and b"MARKERHEADER" not in b"".join(headers.values())
    assert headers["predlog-dlq-reason"]

    assert b"MARKER" not in log, log.decode(errors="replace")[-2000:]
    # Statistics on the original values: the unredacted feature's stats are there.
    (summary,) = [s for s in summaries if not s.get("revision")]
    assert summary["requests"] == N
    assert summary["feature_stats"]["age"]["max"] == 30.0 + N - 1
    assert "salary" not in summary["feature_stats"]
