"""The searchable document of one prediction row (what the Elasticsearch sink indexes).

`_id` is the request id, `<id>-item-<n>` for row n of a batch (as seldon-request-logger
does); a graph node other than the puid's entry node adds `-<node>` after the id, so two
nodes of one graph never overwrite each other. Indices are per namespace, model and day.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stream.eventtime import NS, format_utc, seconds
from stream.pairs import Pair
from stream.summary import feature_names_for

DEFAULT_INDEX_TEMPLATE = "predlog-predictions-{namespace}-{model}-{date}"
_INDEX_NAMES: dict[tuple, str] = {}


def index_name(pair: Pair, template: str = DEFAULT_INDEX_TEMPLATE) -> str:
    """Time-based index of a prediction (lower-case, as Elasticsearch requires).

    >>> from stream.events import ModelRef
    >>> index_name(Pair(ModelRef("Iris", "prod"), "r", 1604655309 * NS))
    'predlog-predictions-prod-iris-2020.11.06'
    """
    m = pair.model
    # A UTC day is 86,400 s (epoch time has no leap seconds): names repeat per day.
    key = (template, m.namespace, m.model, m.predictor, m.node,
           pair.request_time // (86400 * NS))
    name = _INDEX_NAMES.get(key)
    if name is None:
        if len(_INDEX_NAMES) > 4096:
            _INDEX_NAMES.clear()
        day = datetime.fromtimestamp(pair.request_time // NS, UTC).strftime("%Y.%m.%d")
        name = _INDEX_NAMES[key] = template.format(
            namespace=m.namespace or "default", model=m.model, predictor=m.predictor,
            node=m.node, date=day).lower()
    return name


def _scalar(row: list[Any] | None) -> Any:
    if row is None:
        return None
    return row[0] if len(row) == 1 else row


def prediction_documents(pair: Pair, schema: tuple[str, ...] | None = None
                         ) -> list[tuple[str, dict[str, Any]]]:
    """(_id, document) for every input row of a request (one for a request without rows).

    >>> from stream.events import ModelRef
    >>> docs = prediction_documents(Pair(ModelRef("iris", "ns", "clf", "p", "v1"), "r1", 10 * NS,
    ...                              10 * NS + NS // 2, ("a", "b"), [[1, 2], [3, 4]], ("p",),
    ...                              [[0.1], [0.9]]))
    >>> [(i, d["features"], d["prediction"], d["latency_seconds"]) for i, d in docs]
    [('r1-item-0', {'a': 1, 'b': 2}, 0.1, 0.5), ('r1-item-1', {'a': 3, 'b': 4}, 0.9, 0.5)]
    """
    m = pair.model
    rows: list[Any] = pair.rows if pair.rows else [None]
    base = pair.request_id if pair.entry else f"{pair.request_id}-{m.node}"
    outputs = pair.outputs or []
    timestamp = format_utc(pair.request_time)
    response_time = format_utc(pair.response_time) if pair.response_time else None
    output_names = list(pair.output_names) if pair.output_names else None
    latency = None if pair.latency_ns is None else seconds(pair.latency_ns)
    docs = []
    for n, row in enumerate(rows):
        doc_id = base if len(rows) == 1 else f"{base}-item-{n}"
        output = outputs[n] if n < len(outputs) else None
        doc: dict[str, Any] = {
            "@timestamp": timestamp,
            "request_id": pair.request_id,
            "row": n,
            "model_name": m.model,
            "model_version": m.version,
            "namespace": m.namespace,
            "node": m.node,
            "predictor": m.predictor,
            "entry_node": pair.entry,
            "latency_seconds": latency,
            "response_time": response_time,
            "error": pair.error_type is not None,
            "error_type": pair.error_type,
            "error_message": pair.error,
            "prediction": _scalar(output),
            "prediction_names": output_names if n == 0 or output_names is None
            else list(output_names),
        }
        if row is not None:
            names = feature_names_for(pair, len(row), schema)
            doc["features"] = dict(zip(names, row, strict=False))
        docs.append((doc_id, doc))
    return docs
