"""Poison records cannot stop a real worker.

One `predlog worker` (its own group and topics) consumes the generated stream of
`tests/integration/test_worker.py`. After the first windows are out (so Elasticsearch
has mapped the feature ``b`` as a number), the rest of the stream arrives with three
poison records in it:
- a request whose feature ``b`` is a string: Elasticsearch rejects its document for good
  (a mapping conflict). Before the fix this raised out of the window stage; the worker
  stopped, restarted at the same offset, met the same document and stopped again;
- a Seldon feedback event whose truth has a row that is not a label (``[[0], [1, 2]]``):
  before the fix that row vanished without a dead letter or a counter;
- a label record on the events topic that does not decode: it vanished the same way.
The worker must stay alive, every summary must equal the numpy oracle, Elasticsearch must
hold every other document, the dead-letter topic must hold the three with their reasons
(the rejected document with Elasticsearch's error), and /metrics must count them.
"""

from __future__ import annotations

import json
import time

import httpx
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.seldon_stream import START, flush_records, generate, kafka_ce_headers, oracle
from tests.integration.test_worker import WINDOW, _check_against_oracle, _es_count
from tests.integration.workers import PARTITIONS, Deployment

POISON_VALUE = "not a number"


def _poisoned(stream, split_time: bytes):
    """The stream's records with one late request's feature `b` made a string."""
    victim = next(r for r in stream.requests
                  if r.latency is not None and r.error is None and len(r.rows) == 1
                  and r.model == "fraud" and r.t > START + 900)
    records = []
    for key, value, headers in stream.records:
        if key == victim.rid.encode() and dict(headers)["ce_type"].endswith(b"request"):
            body = json.loads(value)
            body["data"]["ndarray"][0][1] = POISON_VALUE
            value = json.dumps(body).encode()
        records.append((key, value, headers))
    assert dict(records[-1][2])["ce_time"] > split_time
    return victim, records


def _dead_letters(dep: Deployment, reasons: set[str], timeout: float) -> list:
    consumer = KafkaConsumer(dep.topics["dlq"], bootstrap_servers=dep.stack.kafka_bootstrap,
                             auto_offset_reset="earliest", group_id=None)
    got, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                got += batch
            if reasons <= {dict(r.headers).get("predlog-dlq-reason", b"").decode()
                           for r in got}:
                break
    finally:
        consumer.close()
    return got


def _dead_letter_counts(port: int) -> dict[tuple[str, str], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.labels["reason"], s.labels["source"]): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "predlog_dead_letters_total"}


def test_poison_records_become_dead_letters_and_the_worker_goes_on(stack):
    stream = generate(n=2000, seconds=1200.0)
    expected = oracle(stream, WINDOW)
    rows = sum(len(r.rows) for r in stream.requests)
    dep = Deployment(stack, window=WINDOW, ttl=30.0, lateness=10.0,
                     extra_env={"PREDLOG_MLFLOW_TRACKING_URI": ""})
    dep.create_topics()
    try:
        proc, port = dep.start_worker()
        split = next(i for i, rec in enumerate(stream.records)
                     if dict(rec[2])["ce_time"] >= b"2026-11-01T00:08:00")
        victim, records = _poisoned(stream, dict(stream.records[split][2])["ce_time"])
        dep.produce(records[:split])
        first = {k for k in expected if k[3] == START}
        assert len({(s["model"], s["node"], s["window_start"])
                    for s in dep.windows(len(first), timeout=60)}) >= len(first)

        # The rest, with the poison request among it, a bad feedback event, a bad label.
        feedback = (b"fb-unknown", json.dumps({"truth": {"data": {"ndarray": [[0], [1, 2]]}}})
                    .encode(), kafka_ce_headers("io.seldon.serving.feedback", "prod", "fraud",
                                                "classifier", "fb-unknown", START + 1000))
        bad_label = (b"lbl-bad", b'{"request_id": "lbl-bad", "label": ', [
            ("predlog-kind", b"label")])
        dep.produce([*records[split:], feedback, bad_label])
        dep.produce(flush_records(stream.end_time + 3600, PARTITIONS), partitions=True)

        summaries = dep.windows(len(expected), timeout=120)
        assert proc.poll() is None, f"the worker stopped, see {dep.logs[0].name}"
        _check_against_oracle(summaries, expected)
        assert _es_count(stack, dep, expected=rows - 1, timeout=60) == rows - 1
        es = Elasticsearch(stack.elasticsearch_url)
        pattern = f"it{dep.suffix}-predictions-prod-*"
        assert es.count(index=pattern, query={"term": {"request_id": victim.rid}})["count"] == 0

        dls = _dead_letters(dep, {"es_rejected", "bad_label", "invalid_json"}, timeout=30)
        by_reason = {}
        for r in dls:
            by_reason.setdefault(dict(r.headers)["predlog-dlq-reason"].decode(), []).append(r)
        [rejected] = by_reason["es_rejected"]
        headers = dict(rejected.headers)
        document = json.loads(rejected.value)
        assert document["request_id"] == victim.rid
        assert document["features"]["b"] == POISON_VALUE
        assert headers["predlog-es-id"].decode() == victim.rid
        assert headers["predlog-es-index"].decode().startswith(f"it{dep.suffix}-predictions-")
        assert headers["predlog-dlq-source"] == b"elasticsearch"
        assert b"parsing_exception" in headers["predlog-dlq-detail"]
        [bad_row] = by_reason["bad_label"]
        assert dict(bad_row.headers)["predlog-dlq-detail"].startswith(b"truth row 1:")
        assert json.loads(bad_row.value)["truth"]  # the feedback body, untouched
        [undecodable] = by_reason["invalid_json"]
        assert undecodable.value == bad_label[1]
        assert dict(undecodable.headers)["predlog-dlq-topic"] == dep.topics["events"].encode()

        counts = _dead_letter_counts(port)
        assert counts[("es_rejected", "elasticsearch")] == 1
        assert counts[("bad_label", dep.topics["events"])] == 1
        assert counts[("invalid_json", dep.topics["events"])] == 1
        assert proc.poll() is None
    finally:
        dep.stop()
