"""Replay from the real Elasticsearch and Kafka, and `--to-kafka` into real workers.

The oracle is the file replay of the bundled sample: the same events read back from
Elasticsearch documents or a Kafka topic must give the same window summaries, and live
workers fed by `--to-kafka` must emit what the in-process replay computes.
"""

from __future__ import annotations

import uuid

import orjson
import pytest
from elasticsearch import Elasticsearch, helpers
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from agents.replay import SAMPLE, replay_files
from agents.replay_sources import ElasticsearchSource, KafkaSource
from agents.settings import load_settings
from agents.sources import iter_file_lines
from agents.to_kafka import republish_files
from sinks.elasticsearch import PREDICTIONS_TEMPLATE
from stream.decode.lines import decode_line
from stream.events import DeadLetter, PredictionEvent
from stream.eventtime import parse_rfc3339
from tests.fixtures.seldon_stream import flush_records
from tests.integration.workers import PARTITIONS, Deployment
from tests.unit.test_replay_sources import COUNTS, logger_documents, run_pipeline

START, END = "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"


def _windows(out) -> dict[tuple, dict]:
    rows = [orjson.loads(x) for x in (out / "windows.jsonl").read_bytes().splitlines()]
    return {(s["namespace"], s["model"], s["node"], s["window_start"]): s for s in rows}


def _same(got: dict, expected: dict, fields=COUNTS) -> None:
    assert set(got) == set(expected)
    for key, exp in expected.items():
        for field in fields:  # (a field absent from both, e.g. `reference`, is equal)
            assert got[key].get(field) == exp.get(field), (key, field, got[key].get(field),
                                                           exp.get(field))


@pytest.fixture(scope="module")
def file_replay(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay")
    replay_files([SAMPLE], load_settings(), out)
    docs = [orjson.loads(x) for x in (out / "predictions.jsonl").read_bytes().splitlines()]
    return _windows(out), docs


@pytest.fixture(scope="module")
def es(stack):
    client = Elasticsearch(stack.elasticsearch_url, request_timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="module")
def indexed(es, file_replay):
    """The replay's prediction documents, bulk-indexed under a per-run prefix."""
    prefix = f"it{uuid.uuid4().hex[:8]}"
    es.indices.put_index_template(name=f"{prefix}-predictions", priority=300,
                                  index_patterns=[f"{prefix}-predictions-*"],
                                  template=PREDICTIONS_TEMPLATE["template"])
    _, docs = file_replay
    actions = [{"_index": d["_index"].replace("predlog-", f"{prefix}-", 1), "_id": d["_id"],
                "_source": {k: v for k, v in d.items() if k not in ("_index", "_id")}}
               for d in docs]
    helpers.bulk(es, actions, refresh="wait_for")
    yield prefix
    es.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
    es.indices.delete_index_template(name=f"{prefix}-predictions")


@pytest.mark.parametrize("use_pit", [True, False], ids=["pit", "scroll"])
def test_elasticsearch_prediction_documents_replay_to_the_file_windows(es, indexed, file_replay,
                                                                       use_pit):
    expected, docs = file_replay
    source = ElasticsearchSource(es, f"{indexed}-predictions-*", START, END, page_size=25,
                                 use_pit=use_pit)
    items = list(source.iter_events())
    assert source.used_pit is use_pit and source.documents == len(docs)
    assert not [i for i in items if isinstance(i, DeadLetter)]
    _same(run_pipeline(items, load_settings()), expected, (*COUNTS, "orphan_responses"))


def test_elasticsearch_time_range_selects_requests_by_time(es, indexed, file_replay):
    expected, docs = file_replay
    start, end = "2026-11-01T00:05:00Z", "2026-11-01T00:10:00Z"
    source = ElasticsearchSource(es, f"{indexed}-predictions-*", start, end, page_size=10)
    items = list(source.iter_events())
    in_range = [d for d in docs if parse_rfc3339(start) <= parse_rfc3339(d["@timestamp"])
                < parse_rfc3339(end)]
    assert source.documents == len(in_range)
    got = run_pipeline(items, load_settings())
    assert {k[3] for k in got} == {start}
    _same(got, {k: v for k, v in expected.items() if k[3] == start})


def test_elasticsearch_seldon_request_logger_documents(es, file_replay):
    expected, _ = file_replay
    prefix = f"it{uuid.uuid4().hex[:8]}"
    lines = [orjson.loads(x) for x in SAMPLE.read_bytes().splitlines() if b'"body"' in x]
    hits = logger_documents(lines)
    helpers.bulk(es, [{"_index": f"{prefix}-{h['_index']}", "_id": h["_id"],
                       "_source": h["_source"]} for h in hits], refresh="wait_for")
    try:
        source = ElasticsearchSource(es, f"{prefix}-inference-log-*", START, END, page_size=40)
        items = list(source.iter_events())
        assert source.documents == len(hits)
        assert not [i for i in items if isinstance(i, DeadLetter)]
        got = run_pipeline(items, load_settings())
        for (ns, model, node, start), exp in expected.items():
            if model in ("iris-classifier", "sklearn-iris"):  # one-node deployments
                g = got[(ns, model, "" if model == "sklearn-iris" else node, start)]
                for field in ("requests", "rows", "predictions", "errors", "error_types",
                              "latency_seconds"):
                    assert g[field] == exp[field], (model, start, field)
    finally:
        es.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)


# -- Kafka -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def republished(stack):
    """The sample republished with `--to-kafka` to fresh topics."""
    suffix = uuid.uuid4().hex[:8]
    topics = {"events": f"it{suffix}.events", "dlq": f"it{suffix}.dlq"}
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics.values()])
    settings = load_settings(kafka_bootstrap=stack.kafka_bootstrap, topic_events=topics["events"],
                             topic_dlq=topics["dlq"])
    result = republish_files([SAMPLE], settings)
    yield topics, result
    admin.delete_topics(list(topics.values()))
    admin.close()


def _consume(bootstrap: str, topic: str) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    out = []
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        for batch in consumer.poll(timeout_ms=1000).values():
            out += batch
    consumer.close()
    return out


def _ms(ns: int) -> int:
    """An event time (int ns) as the Kafka record timestamp `predlog replay --to-kafka` sets."""
    return round(ns / 10**6)


def test_to_kafka_keys_timestamps_and_headers(stack, republished):
    topics, result = republished
    assert sum(result.events.values()) == 356 and sum(result.dead_letters.values()) == 2
    expected = {}
    for line, coords in iter_file_lines([SAMPLE]):
        item = decode_line(line, coords)
        if isinstance(item, PredictionEvent):
            expected.setdefault((item.request_id, _ms(item.event_time)), []).append(line)
    records = _consume(stack.kafka_bootstrap, topics["events"])
    assert len(records) == 356
    for rec in records:
        headers = dict(rec.headers)
        assert (rec.key.decode(), rec.timestamp) in expected
        assert rec.timestamp_type == 0  # CreateTime: the event time we set
        assert {"ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time",
                "content-type"} <= set(headers)
        line = orjson.loads(expected[(rec.key.decode(), rec.timestamp)][0])
        assert rec.value == line["body"].encode()
    by_key: dict[bytes, set] = {}
    for rec in records:  # one request id, one partition
        by_key.setdefault(rec.key, set()).add(rec.partition)
    assert all(len(p) == 1 for p in by_key.values())
    dlq = _consume(stack.kafka_bootstrap, topics["dlq"])
    reasons = sorted(dict(r.headers)["predlog-dlq-reason"] for r in dlq)
    assert reasons == [b"invalid_json", b"unknown_event_type"]
    assert all(dict(r.headers)["predlog-dlq-path"] == str(SAMPLE).encode() for r in dlq)


def test_kafka_topic_between_two_times(stack, republished, file_replay):
    topics, _ = republished
    expected, _ = file_replay
    source = KafkaSource(stack.kafka_bootstrap, topics["events"], START, END)
    items = list(source.iter_events())
    assert source.records == 356 and not [i for i in items if isinstance(i, DeadLetter)]
    times = [_ms(i.event_time) for i in items]
    assert times == sorted(times)  # partitions merged by record timestamp (ms)
    _same(run_pipeline(items, load_settings()), expected, (*COUNTS, "orphan_responses"))

    start, end = "2026-11-01T00:05:00Z", "2026-11-01T00:10:00Z"
    part = list(KafkaSource(stack.kafka_bootstrap, topics["events"], start, end).iter_events())
    want = sorted(_ms(i.event_time) for i in items
                  if _ms(parse_rfc3339(start)) <= _ms(i.event_time) < _ms(parse_rfc3339(end)))
    assert sorted(_ms(i.event_time) for i in part) == want and want


def test_live_workers_emit_what_the_in_process_replay_computes(stack, tmp_path):
    """Issue 7: `--to-kafka` into a real worker; its summaries equal the in-process replay's."""
    dep = Deployment(stack, window=300.0, ttl=30.0, lateness=10.0)
    dep.create_topics()
    settings = load_settings(kafka_bootstrap=stack.kafka_bootstrap, window_seconds=300.0,
                             pairing_ttl_seconds=30.0, allowed_lateness_seconds=10.0,
                             topic_events=dep.topics["events"], topic_dlq=dep.topics["dlq"])
    replay_files([SAMPLE], settings, tmp_path)
    expected = _windows(tmp_path)
    try:
        dep.start_worker()
        republish_files([SAMPLE], settings)
        summaries = _end_input(dep, expected)
    finally:
        dep.stop()
    _same(_newest(summaries), expected, (*COUNTS, "orphan_responses"))


def test_a_bootstrap_reference_survives_a_sigkill_and_equals_the_replays(stack, tmp_path):
    """Issue 16 item 3: models without a reference get one from their first 10 minutes
    (two windows); the third window is compared with it. The worker is SIGKILLed once the
    bootstrap windows were emitted and the third ones are still open: restarted, it
    compares them with the reference restored from its changelog, as replay does."""
    # ... and segments (issue 16 item 2): each window's numbers per petal_width value (the
    # top 3 by rows, the rest "__other__"; KServe's rows have no names: "__missing__"),
    # computed by the worker across the SIGKILL as by the replay.
    bootstrap = {"PREDLOG_REFERENCE_BOOTSTRAP_SECONDS": "600",
                 "PREDLOG_SEGMENT_COLUMNS": "petal_width", "PREDLOG_SEGMENT_TOP_K": "3"}
    dep = Deployment(stack, window=300.0, ttl=30.0, lateness=10.0, extra_env=bootstrap)
    dep.create_topics()
    settings = load_settings(kafka_bootstrap=stack.kafka_bootstrap, window_seconds=300.0,
                             pairing_ttl_seconds=30.0, allowed_lateness_seconds=10.0,
                             topic_events=dep.topics["events"], topic_dlq=dep.topics["dlq"],
                             reference_bootstrap_seconds=600.0,
                             segment_columns="petal_width", segment_top_k=3)
    replay_files([SAMPLE], settings, tmp_path)
    expected = _windows(tmp_path)
    compared = [k for k, s in expected.items() if s.get("reference", {}).get("source")
                == "bootstrap"]
    assert compared and any("dataset_drift" in expected[k]["drift"] for k in compared)
    try:
        proc, _ = dep.start_worker()
        republish_files([SAMPLE], settings)
        first = dep.windows(len(expected) - len(compared))  # the bootstrap windows
        assert {s["drift"]["status"] for s in first} == {"bootstrapping"}
        dep.caught_up("pairs")
        dep.kill(proc)
        dep.start_worker()
        summaries = _end_input(dep, expected)
    finally:
        dep.stop()
    assert any("dataset_drift" in e["drift"] for k in compared
               for e in expected[k]["segments"]["petal_width"].values())
    _same(_newest(summaries), expected,
          (*COUNTS, "drift", "prediction_drift", "reference", "segments"))


def _end_input(dep: Deployment, expected: dict) -> list[dict]:
    """Send a record an hour past the last window to every partition (the end of input, as
    a stream tells it) and read the windows the workers emit."""
    end = max(parse_rfc3339(k[3]) for k in expected) / 10**9 + 3600  # seconds
    dep.produce(flush_records(end, PARTITIONS), partitions=True)
    return dep.windows(len(expected))


def _newest(summaries: list[dict]) -> dict[tuple, dict]:
    """The last emission of each window (revisions add labels)."""
    got: dict[tuple, dict] = {}
    for s in summaries:
        key = (s["namespace"], s["model"], s["node"], s["window_start"])
        if s.get("revision", 0) >= got.get(key, {}).get("revision", -1):
            got[key] = s
    return got
