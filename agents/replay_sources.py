"""Replay inputs beyond files: an Elasticsearch index by time range, a Kafka topic between times.

Every source has one method, `iter_events() -> Iterator[PredictionEvent | DeadLetter]`:
decoded events in (close to) event-time order, and a dead letter, with its source
coordinates, for anything that cannot be read. The replay loop feeds the events to the
`stream.pipeline.Pipeline` exactly as it feeds decoded file lines (`FileSource`).

Elasticsearch documents of two kinds are turned back into request/response events:
- predlog's own prediction documents (`stream.documents`, `predictions.jsonl`): one per
  input row, grouped by request id and graph node; the request at `@timestamp` with the
  `features` rows, the response at `response_time` with the `prediction` rows, or an
  error response (`error_type`, `error_message`); a request never answered has no
  `response_time` and becomes `no_response` again after the pairing TTL.
- seldon-request-logger documents (one per row, `_id` `<RequestId>[-item-<n>]`, upserted
  with a `request`, `response` and/or `feedback` part): each part is decoded with predlog's
  CloudEvent decoder from its `payload` (the original body) and the top-level
  `Ce-Inferenceservicename`/`Ce-Namespace`/`Ce-Endpoint`/`Ce-Modelid`/`ServingEngine`
  fields; without a payload, from the per-row `instance`s and `names`/`elements`. The
  event time is the part's own `ce-time` (the logger's `@timestamp` is the time of the
  last message upserted into the document, usually the response).
Documents are read with a point in time and `search_after` (sorted by `@timestamp`, then
`_shard_doc`); a cluster without point-in-time falls back to a sorted scroll.
"""

from __future__ import annotations

import heapq
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson

from agents.sources import iter_file_lines
from stream.decode.cloudevent import decode_cloudevent
from stream.decode.kafka_records import decode_kafka_record
from stream.decode.lines import decode_line
from stream.events import (
    DeadLetter,
    DecodeError,
    EventKind,
    ModelRef,
    PredictionEvent,
    SourceCoords,
)
from stream.eventtime import format_utc, parse_rfc3339, seconds_to_ns

Item = PredictionEvent | DeadLetter
SOURCE_FORMAT_PREDLOG = "predlog-document"
SOURCE_FORMAT_LOGGER = "seldon-request-logger"
# Header names of records the worker re-keyed into predlog.events (agents.worker).
SOURCE_TOPIC_HEADER = "predlog-source-topic"
KIND_HEADER = "predlog-kind"
_ITEM = re.compile(r"-item-(\d+)$")


class EventSource(Protocol):
    def iter_events(self) -> Iterator[Item]: ...


class FileSource:
    """NDJSON log files (`.gz` too), decoded line by line (what `predlog replay FILE` reads)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def iter_events(self) -> Iterator[Item]:
        for line, coords in iter_file_lines(self.paths):
            yield decode_line(line, coords)


# -- documents → events (pure) -------------------------------------------------------------------
def _source(hit: dict[str, Any]) -> dict[str, Any]:
    """A search hit's `_source`, or a `predictions.jsonl` row as it is."""
    return hit["_source"] if "_source" in hit else hit


def _coords(hit: dict[str, Any]) -> SourceCoords:
    return SourceCoords(kind="elasticsearch", path=f"{hit.get('_index', '')}/{hit.get('_id', '')}")


def document_kind(doc: dict[str, Any]) -> str:
    """`predlog`, `logger` (seldon-request-logger) or `unknown`.

    >>> document_kind({"request_id": "r", "model_name": "m", "@timestamp": "x"})
    'predlog'
    >>> document_kind({"RequestId": "r", "request": {}}), document_kind({"a": 1})
    ('logger', 'unknown')
    """
    if "request_id" in doc and "model_name" in doc:
        return "predlog"
    if "RequestId" in doc or any(isinstance(doc.get(k), dict) for k in ("request", "response")):
        return "logger"
    return "unknown"


def group_key(doc: dict[str, Any]) -> tuple:
    """Documents of one request and graph node share this key."""
    kind = document_kind(doc)
    if kind == "predlog":
        return (kind, doc.get("namespace"), doc.get("model_name"), doc.get("node"),
                doc.get("request_id"))
    if kind == "logger":
        return (kind, doc.get("Ce-Namespace"), doc.get("Ce-Inferenceservicename"),
                doc.get("Ce-Modelid"), doc.get("RequestId"))
    return (kind, id(doc))


def _output_row(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def predlog_document_events(hits: list[dict[str, Any]]) -> list[PredictionEvent]:
    """The request (and response) behind the prediction documents of one request and node.

    >>> docs = [{"@timestamp": "2026-11-01T00:00:00.5Z", "request_id": "r1", "row": n,
    ...          "model_name": "iris", "model_version": "v1", "namespace": "ns", "node": "clf",
    ...          "predictor": "p", "response_time": "2026-11-01T00:00:00.75Z",
    ...          "error_type": None, "features": {"a": n, "b": 2 * n}, "prediction": [0.1 * n],
    ...          "prediction_names": ["proba"]} for n in (1, 0)]
    >>> req, resp = predlog_document_events(docs)
    >>> req.kind.value, req.rows, req.feature_names, resp.outputs, resp.event_time - req.event_time
    ('request', [[0, 0], [1, 2]], ('a', 'b'), [[0.0], [0.1]], 250000000)
    """
    docs = sorted((_source(h) for h in hits), key=lambda d: d.get("row") or 0)
    first = docs[0]
    for name in ("request_id", "model_name", "@timestamp"):
        if not first.get(name):
            raise DecodeError("bad_document", f"prediction document without {name}")
    model = ModelRef(str(first["model_name"]), str(first.get("namespace") or ""),
                     str(first.get("node") or ""), str(first.get("predictor") or ""),
                     str(first.get("model_version") or ""))
    rid = str(first["request_id"])
    try:
        t_req = parse_rfc3339(str(first["@timestamp"]))
        t_resp = parse_rfc3339(str(first["response_time"])) if first.get("response_time") else (
            t_req + seconds_to_ns(float(first["latency_seconds"]))
            if first.get("latency_seconds") is not None
            else None)
    except ValueError as exc:
        raise DecodeError("bad_time", str(exc)) from None
    names: tuple[str, ...] | None = None
    rows: list[list[Any]] = []
    for d in docs:
        features = d.get("features")
        if isinstance(features, dict):
            names = names or tuple(features)
            rows.append([features.get(n) for n in names])
    coords = _coords(hits[0])
    request = PredictionEvent(EventKind.REQUEST, rid, model, t_req,
                              source_format=SOURCE_FORMAT_PREDLOG, feature_names=names,
                              rows=rows, source=coords)
    events = [request]
    error_type = first.get("error_type")
    if t_resp is not None:
        response = PredictionEvent(EventKind.RESPONSE, rid, model, t_resp,
                                   source_format=SOURCE_FORMAT_PREDLOG, source=coords)
        if error_type:
            response.error_type = str(error_type)
            response.error = str(first.get("error_message") or error_type)
        else:
            for d in docs:  # a pair's outputs are a prefix of its rows
                if d.get("prediction") is None:
                    break
                response.outputs.append(_output_row(d["prediction"]))
            pn = first.get("prediction_names")
            response.output_names = tuple(map(str, pn)) if pn else None
        events.append(response)
    return events


_TYPES = {"request": "io.seldon.serving.inference.request",
          "response": "io.seldon.serving.inference.response",
          "feedback": "io.seldon.serving.feedback"}
_KSERVE_TYPES = {"request": "org.kubeflow.serving.inference.request",
                 "response": "org.kubeflow.serving.inference.response"}
_HEADER_FIELDS = {"ce-inferenceservicename": "Ce-Inferenceservicename",
                  "ce-namespace": "Ce-Namespace", "ce-endpoint": "Ce-Endpoint",
                  "ce-modelid": "Ce-Modelid"}


def _item_index(hit: dict[str, Any]) -> int:
    m = _ITEM.search(str(hit.get("_id", "")))
    return int(m.group(1)) if m else 0


def logger_document_events(hits: list[dict[str, Any]]) -> list[PredictionEvent]:
    """The request, response and feedback behind seldon-request-logger documents of one request.

    >>> doc = {"@timestamp": "2020-11-06T09:35:09.2Z", "RequestId": "r1",
    ...        "ServingEngine": "seldon", "Ce-Inferenceservicename": "model-logs",
    ...        "Ce-Namespace": "seldon", "Ce-Endpoint": "default", "Ce-Modelid": "classifier",
    ...        "request": {"instance": [1.0, 2.0], "names": ["a", "b"], "dataType": "tabular",
    ...                    "ce-time": "2020-11-06T09:35:09.1Z"},
    ...        "response": {"instance": [0.4], "ce-time": "2020-11-06T09:35:09.2Z",
    ...                     "payload": {"data": {"names": ["proba"], "ndarray": [[0.4]]}}}}
    >>> req, resp = logger_document_events([{"_id": "r1", "_source": doc}])
    >>> req.model.model, req.model.node, req.rows, req.feature_names, resp.outputs
    ('model-logs', 'classifier', [[1.0, 2.0]], ('a', 'b'), [[0.4]])
    """
    items = sorted(((_item_index(h), _source(h)) for h in hits), key=lambda x: x[0])
    top: dict[str, Any] = {}
    for _, d in items:
        for k, v in d.items():
            if k not in ("request", "response", "feedback") and v not in (None, ""):
                top.setdefault(k, v)
    rid = str(top.get("RequestId") or "")
    if not rid:
        raise DecodeError("missing_request_id", "logger document without RequestId")
    kserve = top.get("ServingEngine") == "inferenceservice"
    events = []
    for kind in ("request", "response", "feedback"):
        parts = [(n, d[kind]) for n, d in items if isinstance(d.get(kind), dict)]
        if not parts:
            continue
        part = parts[0][1]
        ce_type = (_KSERVE_TYPES if kserve else _TYPES).get(kind, _TYPES[kind])
        headers = {"ce-specversion": "1.0", "ce-type": ce_type, "content-type": "application/json",
                   "ce-id": rid if kserve else f"{rid}-{kind}", "ce-requestid": rid,
                   "ce-time": str(part.get("ce-time") or top.get("@timestamp") or "")}
        headers.update({h: str(top[f]) for h, f in _HEADER_FIELDS.items() if top.get(f)})
        if part.get("ce-source"):
            headers["ce-source"] = str(part["ce-source"])
        if not headers["ce-time"]:
            raise DecodeError("missing_time", f"logger {kind} without ce-time or @timestamp")
        payload = next((p["payload"] for _, p in parts if isinstance(p.get("payload"), dict)), None)
        if payload is None and kind == "feedback":
            payload = {k: v for k, v in part.items() if k not in ("ce-time", "ce-source")}
        if payload is None:
            names = part.get("names")
            if not names and isinstance(part.get("elements"), dict):
                names = list(part["elements"])
            rows = [_output_row(p.get("instance")) for _, p in parts if "instance" in p]
            payload = {"data": {"ndarray": rows, **({"names": names} if names else {})}}
        event = decode_cloudevent(headers, orjson.dumps(payload),
                                  source_format=SOURCE_FORMAT_LOGGER)
        event.source = _coords(hits[0])
        events.append(event)
    return events


def document_events(hits: list[dict[str, Any]]) -> list[Item]:
    """Events of one group of documents (`group_key`), or one dead letter. Never raises."""
    doc = _source(hits[0])
    try:
        kind = document_kind(doc)
        if kind == "predlog":
            return list(predlog_document_events(hits))
        if kind == "logger":
            return list(logger_document_events(hits))
        raise DecodeError("unknown_document",
                          "neither a predlog nor a seldon-request-logger document")
    except DecodeError as exc:
        return [DeadLetter(exc.reason, exc.detail, orjson.dumps(doc), source=_coords(hits[0]))]
    except Exception as exc:  # a reconstruction bug must not stop the replay
        return [DeadLetter("decoder_error", f"{type(exc).__name__}: {exc}", orjson.dumps(doc),
                           source=_coords(hits[0]))]


def _rank(item: Item) -> int:
    if isinstance(item, DeadLetter):
        return 0
    if item.kind is EventKind.REQUEST:  # the puid's entry node first (see stream.pairing)
        return 1
    return 2 if item.kind is EventKind.RESPONSE else 3


def events_from_documents(hits: Iterable[dict[str, Any]], reorder_seconds: float = 60.0
                          ) -> Iterator[Item]:
    """Group documents sorted by `@timestamp` by request, rebuild their events, and yield them
    in event-time order: a group is closed, and an event released, once the documents have
    moved `reorder_seconds` past it (responses come after their request's `@timestamp`)."""
    groups: OrderedDict[tuple, tuple[float, list[dict[str, Any]]]] = OrderedDict()
    heap: list[tuple[float, int, int, Item]] = []
    seq = 0
    reorder_ns = seconds_to_ns(reorder_seconds)  # event times are int ns

    def close(key: tuple) -> None:
        nonlocal seq
        _, group = groups.pop(key)
        for item in document_events(group):
            t = item.event_time if isinstance(item, PredictionEvent) else float("-inf")
            heapq.heappush(heap, (t, _rank(item), seq, item))
            seq += 1

    for hit in hits:
        doc = _source(hit)
        try:
            ts = parse_rfc3339(str(doc.get("@timestamp")))
        except ValueError:
            ts = float("-inf")  # dead-lettered by document_events
        key = group_key(doc)
        last, group = groups.pop(key, (ts, []))
        group.append(hit)
        groups[key] = (max(last, ts), group)  # groups stay ordered by their latest document
        horizon = ts - reorder_ns
        while groups and next(iter(groups.values()))[0] < horizon:
            close(next(iter(groups)))
        while heap and heap[0][0] < horizon:
            yield heapq.heappop(heap)[3]
    while groups:
        close(next(iter(groups)))
    while heap:
        yield heapq.heappop(heap)[3]


# -- Elasticsearch -------------------------------------------------------------------------------
def _iso(t: float | str) -> str:
    """A range bound: RFC 3339 text as given, epoch seconds formatted."""
    return t if isinstance(t, str) else format_utc(seconds_to_ns(t))


class ElasticsearchSource:
    """Prediction or seldon-request-logger documents with `start <= @timestamp < end`.

    `client` is an `elasticsearch.Elasticsearch` (or a URL); `index` a name, pattern or
    comma-separated list; `start`/`end` epoch seconds or ISO 8601 strings.
    """

    def __init__(self, client: Any, index: str, start: float | str, end: float | str, *,
                 page_size: int = 1000, reorder_seconds: float = 60.0, keep_alive: str = "5m",
                 use_pit: bool = True) -> None:
        if isinstance(client, str):
            from elasticsearch import Elasticsearch

            client = Elasticsearch(client, request_timeout=60)
        self.client = client
        self.index = index
        self.start, self.end = _iso(start), _iso(end)
        self.page_size = page_size
        self.reorder_seconds = reorder_seconds
        self.keep_alive = keep_alive
        self.use_pit = use_pit
        self.used_pit: bool | None = None  # set once reading started
        self.documents = 0

    @property
    def query(self) -> dict[str, Any]:
        return {"range": {"@timestamp": {"gte": self.start, "lt": self.end}}}

    def iter_events(self) -> Iterator[Item]:
        yield from events_from_documents(self.hits(), self.reorder_seconds)

    def hits(self) -> Iterator[dict[str, Any]]:
        pit = None
        if self.use_pit:
            from elasticsearch import ApiError

            try:
                pit = self.client.open_point_in_time(index=self.index, keep_alive=self.keep_alive,
                                                     ignore_unavailable=True)["id"]
            except ApiError:
                pit = None  # e.g. a cluster before 7.10: fall back to a sorted scroll
        self.used_pit = pit is not None
        if pit is None:
            yield from self._scroll()
            return
        try:
            after = None
            while True:
                resp = self.client.search(
                    pit={"id": pit, "keep_alive": self.keep_alive}, query=self.query,
                    sort=[{"@timestamp": "asc"}, {"_shard_doc": "asc"}], size=self.page_size,
                    search_after=after, track_total_hits=False)
                pit = resp.get("pit_id", pit)
                page = resp["hits"]["hits"]
                for hit in page:
                    self.documents += 1
                    yield hit
                if len(page) < self.page_size:
                    break
                after = page[-1]["sort"]
        finally:
            try:
                self.client.close_point_in_time(id=pit)
            except Exception:  # noqa: BLE001 - it expires on its own after keep_alive
                pass

    def _scroll(self) -> Iterator[dict[str, Any]]:
        from elasticsearch import helpers

        for hit in helpers.scan(self.client, index=self.index, query={
                "query": self.query, "sort": [{"@timestamp": "asc"}]}, preserve_order=True,
                size=self.page_size, scroll=self.keep_alive, ignore_unavailable=True):
            self.documents += 1
            yield hit


# -- Kafka ---------------------------------------------------------------------------------------
def _ms(t: float | str) -> int:
    """A range bound (RFC 3339 text or epoch seconds) → Kafka ms (half to even)."""
    return round(parse_rfc3339(t) if isinstance(t, str) else seconds_to_ns(t), -6) // 10**6


class KafkaSource:
    """Records of one topic with `start <= timestamp < end`, every partition, merged by time.

    Per partition: from the first offset at or after `start` (`offsets_for_times`) to the
    first at or after `end`, or to the partition's end offset when the reading starts.
    Records in that offset range whose timestamp falls outside [start, end) are skipped
    (producer timestamps need not be monotonic). Partitions are merged by record timestamp
    so the replay's single watermark sees one time-ordered stream.
    """

    def __init__(self, bootstrap: str, topic: str, start: float | str, end: float | str, *,
                 buffer: int = 2000, consumer_config: dict[str, Any] | None = None) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.start_ms, self.end_ms = _ms(start), _ms(end)
        self.buffer = buffer
        self.consumer_config = consumer_config or {}
        self.records = 0
        self.skipped_labels = 0

    def _ranges(self, consumer: Any) -> dict[Any, tuple[int, int]]:
        from kafka import TopicPartition

        parts = consumer.partitions_for_topic(self.topic)
        if not parts:
            raise ValueError(f"topic {self.topic!r} not found on {self.bootstrap}")
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        starts = consumer.offsets_for_times({tp: self.start_ms for tp in tps})
        stops = consumer.offsets_for_times({tp: self.end_ms for tp in tps})
        ends = consumer.end_offsets(tps)
        ranges = {}
        for tp in tps:
            if starts[tp] is None:
                continue  # no record at or after start
            stop = stops[tp].offset if stops[tp] is not None else ends[tp]
            if stop > starts[tp].offset:
                ranges[tp] = (starts[tp].offset, stop)
        return ranges

    def iter_events(self) -> Iterator[Item]:
        for record in self.records_in_range():
            headers = list(record.headers or [])
            hmap = dict(headers)
            if hmap.get(KIND_HEADER) == b"label":
                self.skipped_labels += 1
                continue
            topic = record.topic
            if SOURCE_TOPIC_HEADER in hmap:  # re-keyed by a worker: decode as its origin
                topic = hmap[SOURCE_TOPIC_HEADER].decode()
                headers = [(k, v) for k, v in headers if k != SOURCE_TOPIC_HEADER]
            yield decode_kafka_record(topic, record.key, record.value, headers,
                                      record.timestamp, partition=record.partition,
                                      offset=record.offset)

    def records_in_range(self) -> Iterator[Any]:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                 enable_auto_commit=False, **self.consumer_config)
        try:
            ranges = self._ranges(consumer)
            consumer.assign(list(ranges))
            for tp, (first, _) in ranges.items():
                consumer.seek(tp, first)
            yield from self._merge(consumer, ranges)
        finally:
            consumer.close()

    def _merge(self, consumer: Any, ranges: dict[Any, tuple[int, int]]) -> Iterator[Any]:
        """k-way merge by timestamp: release the oldest head once every open partition has one."""
        buffers: dict[Any, list] = {tp: [] for tp in ranges}
        heads = {tp: 0 for tp in ranges}
        open_tps = set(ranges)
        paused: set = set()
        while open_tps or any(heads[tp] < len(buffers[tp]) for tp in buffers):
            waiting = [tp for tp in open_tps if heads[tp] >= len(buffers[tp])]
            for tp in waiting:  # e.g. only transaction markers left before the stop offset
                if consumer.position(tp) >= ranges[tp][1]:
                    open_tps.discard(tp)
                    consumer.pause(tp)
            if waiting:
                for tp, batch in consumer.poll(timeout_ms=1000, max_records=2000).items():
                    stop = ranges[tp][1]
                    for rec in batch:
                        if rec.offset >= stop:
                            open_tps.discard(tp)
                            break
                        buffers[tp].append(rec)
                    if tp in open_tps and consumer.position(tp) >= stop:
                        open_tps.discard(tp)
                    if tp not in open_tps:
                        consumer.pause(tp)
                for tp in list(open_tps):  # keep memory bounded: pause partitions far ahead
                    pending = len(buffers[tp]) - heads[tp]
                    if pending > self.buffer and tp not in paused:
                        consumer.pause(tp)
                        paused.add(tp)
                    elif pending <= self.buffer and tp in paused:
                        consumer.resume(tp)
                        paused.discard(tp)
                if any(heads[tp] >= len(buffers[tp]) for tp in open_tps):
                    continue
            candidates = [tp for tp in buffers if heads[tp] < len(buffers[tp])]
            if not candidates:
                continue
            tp = min(candidates, key=lambda t: (buffers[t][heads[t]].timestamp, t.partition))
            rec = buffers[tp][heads[tp]]
            heads[tp] += 1
            if heads[tp] > 4096:  # compact the consumed prefix
                del buffers[tp][:heads[tp]]
                heads[tp] = 0
            if self.start_ms <= rec.timestamp < self.end_ms:
                self.records += 1
                yield rec
