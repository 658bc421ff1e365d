"""Replay sources without servers: documents → events → the same windows as the file replay;
files → `predlog.events` records (`--to-kafka`) that decode to the same events."""

from __future__ import annotations

import json

import orjson
import pytest

from agents.monitoring_setup import make_monitoring
from agents.replay import SAMPLE, replay_files
from agents.replay_sources import (
    FileSource,
    document_events,
    events_from_documents,
    logger_document_events,
    predlog_document_events,
)
from agents.settings import load_settings
from agents.sources import iter_file_lines
from agents.to_kafka import line_to_record, record_timestamp_ms, republish
from stream.deadletters import REASON
from stream.decode.kafka_records import decode_kafka_record
from stream.decode.lines import decode_line
from stream.events import DeadLetter, EventKind, PredictionEvent
from stream.pipeline import Pipeline

COUNTS = ("requests", "rows", "predictions", "errors", "error_types", "unpaired_requests",
          "latency_seconds", "version", "window_end", "feature_stats", "input_size")


def run_pipeline(items, settings) -> dict[tuple, dict]:
    """What replay_files does with decoded items, minus the outputs: summaries by window."""
    p = Pipeline(settings.window_seconds, settings.allowed_lateness_seconds,
                 settings.pairing_ttl_seconds,
                 monitoring=make_monitoring(settings))
    out = []
    for n, item in enumerate(items, 1):
        if isinstance(item, DeadLetter):
            continue
        out += p.process(item).summaries
        if n % 1000 == 0:
            out += p.advance().summaries
    out += p.finish().summaries
    return {(s.namespace, s.model, s.node, s.window_start): s.to_builtins() for _, s in out}


@pytest.fixture(scope="module")
def file_replay(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay")
    replay_files([SAMPLE], load_settings(), out)
    windows = [orjson.loads(x) for x in (out / "windows.jsonl").read_bytes().splitlines()]
    docs = [orjson.loads(x) for x in (out / "predictions.jsonl").read_bytes().splitlines()]
    return {(s["namespace"], s["model"], s["node"], s["window_start"]): s for s in windows}, docs


def test_file_source_is_what_replay_reads():
    items = list(FileSource([SAMPLE]).iter_events())
    assert len(items) == 358
    assert sorted(i.reason for i in items if isinstance(i, DeadLetter)) == [
        "invalid_json", "unknown_event_type"]


def test_prediction_documents_replay_to_the_same_windows(file_replay):
    expected, docs = file_replay
    docs = sorted(docs, key=lambda d: d["@timestamp"])  # what the search returns
    items = list(events_from_documents(docs))
    assert not [i for i in items if isinstance(i, DeadLetter)]
    times = [i.event_time for i in items]
    assert times == sorted(times)  # one time-ordered stream
    got = run_pipeline(items, load_settings())
    assert set(got) == set(expected)
    for key, exp in expected.items():
        for field in (*COUNTS, "orphan_responses", "drift"):
            assert got[key][field] == exp[field], (key, field)
        # feedback is not in prediction documents: no labels, no performance
        assert got[key]["performance"]["labels"] == 0


def _doc(**over):
    base = {"@timestamp": "2026-11-01T00:00:01Z", "request_id": "r1", "row": 0,
            "model_name": "iris", "model_version": "v1", "namespace": "ns", "node": "clf",
            "predictor": "p", "entry_node": True, "latency_seconds": 0.5,
            "response_time": "2026-11-01T00:00:01.5Z", "error": False, "error_type": None,
            "error_message": None, "features": {"a": 1.0}, "prediction": 1,
            "prediction_names": None}
    return {**base, **over}


def test_error_unanswered_and_scalar_documents():
    req, resp = predlog_document_events([_doc(error=True, error_type="MICROSERVICE_INTERNAL_ERROR",
                                              error_message="boom", prediction=None)])
    assert (resp.kind, resp.error_type, resp.error, resp.outputs) == (
        EventKind.RESPONSE, "MICROSERVICE_INTERNAL_ERROR", "boom", [])
    [req] = predlog_document_events([_doc(response_time=None, latency_seconds=None,
                                          error=True, error_type="no_response")])
    assert req.kind is EventKind.REQUEST and req.rows == [[1.0]]
    req, resp = predlog_document_events([_doc()])
    assert resp.outputs == [[1]] and resp.event_time - req.event_time == 500_000_000
    assert req.model.version == resp.model.version == "v1"
    [dl] = document_events([{"_index": "i", "_id": "x", "_source": _doc(request_id="")}])
    assert dl.reason == "bad_document" and dl.source.path == "i/x"
    [dl] = document_events([{"_index": "i", "_id": "y", "_source": {"hello": 1}}])
    assert dl.reason == "unknown_document"


def test_responses_are_released_in_event_time_order():
    docs = [_doc(request_id="r1", **{"@timestamp": "2026-11-01T00:00:01Z"},
                 response_time="2026-11-01T00:00:09Z"),
            _doc(request_id="r2", **{"@timestamp": "2026-11-01T00:00:02Z"},
                 response_time="2026-11-01T00:00:03Z"),
            _doc(request_id="r3", row=1, **{"@timestamp": "2026-11-01T00:00:05Z"},
                 response_time="2026-11-01T00:00:06Z"),
            _doc(request_id="r3", row=0, **{"@timestamp": "2026-11-01T00:00:05Z"},
                 response_time="2026-11-01T00:00:06Z", features={"a": 0.0})]
    items = list(events_from_documents(docs, reorder_seconds=0))
    assert [(i.request_id, i.kind.value) for i in items] == [
        ("r1", "request"), ("r2", "request"), ("r2", "response"), ("r3", "request"),
        ("r3", "response"), ("r1", "response")]
    assert items[3].rows == [[0.0], [1.0]]  # batch rows in row order


# -- seldon-request-logger documents --------------------------------------------------------------
def _logger_part(body: dict, headers: dict, kind: str) -> dict:
    """seldon-request-logger's `extract_data_part`, reduced to the fields predlog reads."""
    if kind == "feedback":  # stored as it came, no payload
        return {**body, "ce-time": headers["ce-time"], "ce-source": headers.get("ce-source")}
    part: dict = {"payload": body, "ce-time": headers["ce-time"],
                  "ce-source": headers.get("ce-source")}
    if "instances" in body or "predictions" in body:
        part["instance"] = body.get("instances", body.get("predictions"))
    elif isinstance(body.get("data"), dict):
        data = body["data"]
        if "ndarray" in data:
            part["instance"] = data["ndarray"]
        else:
            shape, values = data["tensor"]["shape"], data["tensor"]["values"]
            part["instance"] = [values[i * shape[1]:(i + 1) * shape[1]] for i in range(shape[0])]
        if "names" in data:
            part["names"] = data["names"]
    else:
        part["instance"] = None  # e.g. a failure status: one document, the request id
    return part


def logger_documents(lines: list[dict]) -> list[dict]:
    """Index the sample as seldon-request-logger does: per row, upserted by request id."""
    types = {"io.seldon.serving.inference.request": "request",
             "io.seldon.serving.inference.response": "response",
             "io.seldon.serving.feedback": "feedback",
             "org.kubeflow.serving.inference.request": "request",
             "org.kubeflow.serving.inference.response": "response"}
    docs: dict[tuple, dict] = {}
    for line in lines:
        h = line["headers"]
        kind = types.get(h.get("ce-type"))
        try:
            body = json.loads(line["body"])
        except ValueError:
            continue
        if kind is None:
            continue
        rid = h.get("ce-requestid") or h["ce-id"]
        engine = "seldon" if h["ce-type"].startswith("io.seldon") else "inferenceservice"
        index = f"inference-log-{engine}-{h['ce-namespace']}-{h['ce-inferenceservicename']}"
        top = {"ServingEngine": engine, "RequestId": rid, "@timestamp": h["ce-time"],
               "Ce-Inferenceservicename": h["ce-inferenceservicename"],
               "Ce-Namespace": h["ce-namespace"], "Ce-Endpoint": h["ce-endpoint"]}
        if h.get("ce-modelid"):
            top["Ce-Modelid"] = h["ce-modelid"]
        part = _logger_part(body, h, kind)
        instance = part.get("instance")
        items = instance if isinstance(instance, list) else [instance]
        batch = isinstance(instance, list)
        for n, item in enumerate(items if kind != "feedback" else [None]):
            doc_id = f"{rid}-item-{n}" if batch and len(items) > 1 else rid
            doc = docs.setdefault((index, doc_id), {})
            p = dict(part)
            if kind != "feedback":
                p["instance"] = item
            doc.update(top)
            doc[kind] = p
    return [{"_index": i, "_id": d, "_source": s} for (i, d), s in docs.items()]


def test_logger_document_fields():
    doc = {"@timestamp": "2026-11-01T00:00:02Z", "RequestId": "k1",
           "ServingEngine": "inferenceservice", "Ce-Inferenceservicename": "sk",
           "Ce-Namespace": "kserve", "Ce-Endpoint": "default",
           "request": {"instance": [1, 2], "dataType": "tabular",
                       "ce-time": "2026-11-01T00:00:01Z"},
           "response": {"instance": 1, "ce-time": "2026-11-01T00:00:02Z"}}
    req, resp = logger_document_events([{"_id": "k1-item-0", "_source": doc}])
    assert (req.request_id, req.model.model, req.rows, resp.outputs) == ("k1", "sk", [[1, 2]],
                                                                         [[1]])
    assert resp.event_time - req.event_time == 10**9
    assert req.source_format == "seldon-request-logger"


def test_logger_documents_replay_to_the_same_windows(file_replay):
    expected, _ = file_replay
    lines = [json.loads(x) for x in SAMPLE.read_text().splitlines() if x.startswith("{")
             and '"body"' in x]
    hits = logger_documents(lines)
    hits.sort(key=lambda h: h["_source"]["@timestamp"])
    items = list(events_from_documents(hits))
    assert not [i for i in items if isinstance(i, DeadLetter)]
    got = run_pipeline(items, load_settings())
    # One node per deployment (the logger has no node in its index or _id; KServe sends
    # Ce-Component, which it does not store): compare the one-node deployments.
    one_node = {k: v for k, v in expected.items()
                if k[1] in ("iris-classifier", "sklearn-iris")}
    for (ns, model, node, start), exp in one_node.items():
        g = got[(ns, model, "" if model == "sklearn-iris" else node, start)]
        for field in ("requests", "rows", "predictions", "errors", "error_types",
                      "unpaired_requests", "latency_seconds", "feature_stats"):
            assert g[field] == exp[field], (model, start, field)
    # feedback parts come back as feedback events (labels), one per request
    assert sum(1 for i in items if i.kind is EventKind.FEEDBACK) == 19


# -- --to-kafka ------------------------------------------------------------------------------------
def test_every_sample_line_maps_to_the_record_ingest_would_produce():
    n = 0
    for line, coords in iter_file_lines([SAMPLE]):
        want = decode_line(line, coords)
        rec = line_to_record(line, coords)
        if isinstance(want, DeadLetter):
            assert isinstance(rec, DeadLetter) and rec.reason == want.reason
            assert rec.source.path == str(SAMPLE) and rec.raw == line
            continue
        n += 1
        obj = json.loads(line)
        assert rec.key == want.request_id.encode()
        assert rec.value == obj["body"].encode()
        names = [k for k, _ in rec.headers]
        assert all(k.startswith("ce_") or k == "content-type" for k in names)
        assert {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"} <= set(names)
        assert record_timestamp_ms(rec) == round(want.event_time / 10**6)  # ns → ms
        got = decode_kafka_record("predlog.events", rec.key, rec.value, rec.headers,
                                  record_timestamp_ms(rec))
        assert isinstance(got, PredictionEvent)
        for field in ("kind", "request_id", "model", "event_time", "rows", "outputs",
                      "error_type", "truth", "feature_names", "output_names"):
            assert getattr(got, field) == getattr(want, field), field
    assert n == 356


def test_kafka_mode_and_structured_lines():
    kafka_line = json.dumps({"headers": {
        "type": "io.seldon.serving.inference.response", "requestid": "p1",
        "modelid": "clf", "inferenceservicename": "iris", "namespace": "ns",
        "endpoint": "default", "content-type": "application/json"},
        "value": json.dumps({"data": {"ndarray": [[0.1]]}}), "timestamp": 1793491200250}).encode()
    rec = line_to_record(kafka_line)
    h = dict(rec.headers)
    assert (rec.key, h["ce_type"], h["ce_modelid"]) == (b"p1", b"io.seldon.serving.inference."
                                                        b"response", b"clf")
    assert record_timestamp_ms(rec) == 1793491200250
    assert line_to_record(kafka_line).headers == rec.headers  # deterministic ce_id
    structured = json.dumps({"specversion": "1.0", "id": "e1", "source": "s",
                             "type": "io.seldon.serving.inference.request", "requestid": "p2",
                             "inferenceservicename": "iris", "time": "2026-11-01T00:00:00Z",
                             "datacontenttype": "application/json",
                             "data": {"data": {"ndarray": [[1, 2]]}}}).encode()
    rec = line_to_record(structured)
    assert rec.key == b"p2" and rec.event.rows == [[1, 2]]
    assert json.loads(rec.value) == {"data": {"ndarray": [[1, 2]]}}


class _Future:
    def add_errback(self, fn):
        return self


class FakeProducer:
    def __init__(self):
        self.sent = []

    def send(self, topic, **kw):
        self.sent.append((topic, kw))
        return _Future()

    def flush(self):
        pass


def test_republish_sends_events_and_dead_letters():
    producer = FakeProducer()
    result = republish(iter_file_lines([SAMPLE]), producer, topic="ev", dlq_topic="dlq")
    assert result.lines == 358 and sum(result.events.values()) == 356
    assert dict(result.dead_letters) == {"invalid_json": 1, "unknown_event_type": 1}
    dlq = [kw for t, kw in producer.sent if t == "dlq"]
    assert sorted(dict(kw["headers"])[REASON] for kw in dlq) == [b"invalid_json",
                                                                 b"unknown_event_type"]
    assert all(dict(kw["headers"])["predlog-dlq-path"] == str(SAMPLE).encode() for kw in dlq)
    assert all(kw["timestamp_ms"] > 0 and kw["key"] for t, kw in producer.sent if t == "ev")


def test_header_names_match_the_worker():
    worker = pytest.importorskip("agents.worker")
    from agents import replay_sources

    assert replay_sources.SOURCE_TOPIC_HEADER == worker.SOURCE_TOPIC_HEADER
    assert replay_sources.KIND_HEADER == worker.KIND_HEADER

