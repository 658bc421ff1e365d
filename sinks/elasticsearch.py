"""Elasticsearch sink: one document per prediction row, one per window summary.

Buffers index operations in `add_*` and writes them in `flush()` with the bulk helper.
`_id`s are deterministic (request id, `-item-<n>`; window id), so a replay or a
redelivery overwrites instead of duplicating. When Elasticsearch is unreachable or
rejects documents with a retryable status, `flush()` keeps retrying with backoff and
does not return: the worker stops consuming (backpressure) and nothing is dropped.
A document refused for good (a mapping conflict, e.g. a feature that was numeric and
arrives as a string) does not stop the rest of the bulk: it is kept as a `Rejection`
(the document and Elasticsearch's error) for the driver to dead-letter
(`take_rejected()`), and the flush goes on.
Index templates with explicit mappings are installed by `install_templates()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from elasticsearch import ConnectionError, ConnectionTimeout, Elasticsearch, helpers
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from stream.documents import DEFAULT_INDEX_TEMPLATE, index_name, prediction_documents
from stream.events import DeadLetter, SourceCoords
from stream.pairs import Pair
from stream.window_summary import WindowSummary
from stream.windows import WindowKey

log = logging.getLogger("predlog.sinks.elasticsearch")

RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}

PREDICTIONS_TEMPLATE = {
    "index_patterns": ["predlog-predictions-*"],
    "priority": 200,
    "template": {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {
            "dynamic_templates": [
                {"features_numeric": {"path_match": "features.*",
                                      "match_mapping_type": "long", "mapping": {"type": "double"}}},
                {"features_text": {"path_match": "features.*", "match_mapping_type": "string",
                                   "mapping": {"type": "keyword"}}},
            ],
            "properties": {
                "@timestamp": {"type": "date"},
                "request_id": {"type": "keyword"},
                "row": {"type": "integer"},
                "model_name": {"type": "keyword"},
                "model_version": {"type": "keyword"},
                "namespace": {"type": "keyword"},
                "node": {"type": "keyword"},
                "predictor": {"type": "keyword"},
                "entry_node": {"type": "boolean"},
                "latency_seconds": {"type": "double"},
                "response_time": {"type": "date"},
                "error": {"type": "boolean"},
                "error_type": {"type": "keyword"},
                "error_message": {"type": "text"},
                "prediction": {"type": "object", "enabled": False},
                "prediction_names": {"type": "keyword"},
                "features": {"type": "object"},
                "label": {"type": "object", "enabled": False},
                "correct": {"type": "boolean"},
            },
        },
    },
}

WINDOWS_TEMPLATE = {
    "index_patterns": ["predlog-windows-*"],
    "priority": 200,
    "template": {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {
            "properties": {
                "model": {"type": "keyword"},
                "version": {"type": "keyword"},
                "namespace": {"type": "keyword"},
                "node": {"type": "keyword"},
                "window_start": {"type": "date"},
                "window_end": {"type": "date"},
                "requests": {"type": "long"},
                "rows": {"type": "long"},
                "predictions": {"type": "long"},
                "errors": {"type": "long"},
                "unpaired_requests": {"type": "long"},
                "revision": {"type": "integer"},
                "error_types": {"type": "object", "enabled": False},
                "feature_stats": {"type": "object", "enabled": False},
                "drift": {"type": "object", "enabled": False},
                "prediction_drift": {"type": "object", "enabled": False},
                "performance": {"type": "object", "enabled": False},
                # kept, not indexed: its keys are segment values (no mapping growth)
                "segments": {"type": "object", "enabled": False},
                "latency_seconds": {"properties": {
                    k: {"type": "double"} for k in ("p50", "p95", "p99", "mean", "max")}},
            },
        },
    },
}


def windows_index(key: WindowKey) -> str:
    """`predlog-windows-<yyyy.MM>` of the window's start."""
    start = datetime.fromtimestamp(key.start // 1_000_000_000, UTC)  # key.start: int ns
    return "predlog-windows-" + start.strftime("%Y.%m")


@dataclass(frozen=True)
class Rejection:
    """A document Elasticsearch refused for a reason retrying cannot fix (e.g. a mapping)."""

    index: str
    doc_id: str
    document: dict[str, Any]
    error: dict[str, Any]  # the bulk item's response: status, error type and reason

    def dead_letter(self) -> DeadLetter:
        """For the dead-letter topic: the document, its index and id, Elasticsearch's error."""
        return DeadLetter("es_rejected", orjson.dumps(self.error, default=str).decode(),
                          orjson.dumps(self.document, default=str, option=orjson.OPT_SORT_KEYS),
                          {"predlog-es-index": self.index, "predlog-es-id": self.doc_id},
                          SourceCoords("elasticsearch", path=self.index))


class _BulkRetry(Exception):
    """Some documents failed with a retryable status; the whole bulk is sent again."""


class ElasticsearchSink:
    def __init__(self, client: Elasticsearch, *, index_template: str = DEFAULT_INDEX_TEMPLATE,
                 max_retry_seconds: float | None = None,
                 on_retry: Callable[[BaseException], None] | None = None,
                 redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.client = client
        self.redact = redact  # e.g. `stream.redaction.Redactor.document`, before anything leaves
        self.index_template = index_template
        self.max_retry_seconds = max_retry_seconds  # None: retry until it works
        self.on_retry = on_retry
        self._ops: list[dict[str, Any]] = []
        self._rejected: list[Rejection] = []
        self._templates = False  # installed (by `install_templates`, or the first flush)

    def install_templates(self) -> None:
        """Put the index templates (retrying while Elasticsearch is unavailable). A worker
        leaves it to its first flush: started during an outage, it must come up (health,
        metrics) and hold its batches there, not block before it serves anything."""
        for name, body in (("predlog-predictions", PREDICTIONS_TEMPLATE),
                           ("predlog-windows", WINDOWS_TEMPLATE)):
            self._retrying()(lambda n=name, b=body: self.client.indices.put_index_template(
                name=n, **b))
        self._templates = True

    def add_pair(self, pair: Pair) -> None:
        index = index_name(pair, self.index_template)
        for doc_id, doc in prediction_documents(pair):
            if self.redact is not None:
                doc = self.redact(doc)
            self._ops.append({"_op_type": "index", "_index": index, "_id": doc_id,
                              "_source": doc})

    def add_summary(self, key: WindowKey, summary: WindowSummary) -> None:
        self._ops.append({"_op_type": "index", "_index": windows_index(key), "_id": key.id,
                          "_source": summary.to_builtins()})

    def __len__(self) -> int:
        return len(self._ops)

    def take_rejected(self) -> list[Rejection]:
        """The documents refused for good since the last call (to dead-letter them)."""
        rejected, self._rejected = self._rejected, []
        return rejected

    def _retrying(self) -> Retrying:
        stop = stop_after_delay(self.max_retry_seconds) if self.max_retry_seconds else None
        kwargs: dict[str, Any] = {"stop": stop} if stop else {}
        return Retrying(
            retry=retry_if_exception_type((ConnectionError, ConnectionTimeout, _BulkRetry)),
            wait=wait_exponential(multiplier=0.2, max=5), reraise=True,
            before_sleep=lambda rs: self._log_retry(
                rs.outcome.exception() if rs.outcome else None), **kwargs)

    def _log_retry(self, exc: BaseException | None) -> None:
        log.warning("Elasticsearch write failed, retrying: %s", exc)
        if self.on_retry is not None and exc is not None:
            self.on_retry(exc)

    def flush(self) -> int:
        """Write everything buffered; blocks (retrying) while Elasticsearch is unavailable.

        Returns how many documents were written; documents refused for good are left
        out of the count and kept for `take_rejected()`.
        """
        if not self._ops:
            return 0
        if not self._templates:  # before the first document: its index takes the mappings
            self.install_templates()
        pending = self._ops
        written = 0

        def attempt() -> None:
            nonlocal pending, written
            retry: list[dict[str, Any]] = []
            # Counted only if the attempt completes: a failed one is sent again in full.
            rejected: list[Rejection] = []
            done = 0
            for ok, item in helpers.streaming_bulk(self.client, pending, raise_on_error=False,
                                                   raise_on_exception=True, chunk_size=2000,
                                                   max_retries=0):
                if ok:
                    done += 1
                    continue
                info = next(iter(item.values()))
                op = _find(pending, info)
                if info.get("status") in RETRYABLE_STATUS:
                    retry.append(op)
                else:  # a mapping conflict and the like: not retryable, never silent
                    log.error("Elasticsearch rejected document %s in %s: %s", op["_id"],
                              op["_index"], info.get("error"))
                    rejected.append(Rejection(op["_index"], str(op["_id"]), op["_source"],
                                              info))
            self._rejected += rejected
            written += done
            pending = retry
            if retry:
                raise _BulkRetry(f"{len(retry)} documents to retry")

        self._retrying()(attempt)
        self._ops = []
        return written


def _find(ops: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    for op in ops:
        if op["_id"] == info.get("_id") and op["_index"] == info.get("_index"):
            return op
    raise KeyError(info.get("_id"))
