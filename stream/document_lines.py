"""Prediction documents rendered straight to sorted-key JSON lines (the replay's
`predictions.jsonl`).

`prediction_lines(pair, index)` gives exactly the bytes of
``orjson.dumps({**doc, "_index": index, "_id": doc_id}, option=OPT_SORT_KEYS |
OPT_APPEND_NEWLINE)`` for every ``(doc_id, doc)`` of `stream.documents.prediction_documents`,
without building the 19-key dict per row: the keys are written in their sorted order
around values serialized by orjson itself (with the same option, so nested dicts are
sorted the same way), and the parts shared by a pair's rows, or by a model's pairs,
are serialized once. A pair the template does not cover (non-str feature names,
values orjson refuses) goes through the dicts, which then behave exactly as before.

>>> from stream.events import ModelRef
>>> pair = Pair(ModelRef("iris", "ns", "clf", "p", "v1"), "r1", 10 * 10**9, 10_500_000_000,
...             ("a",), [[1]], ("p",), [[0.9]])
>>> prediction_lines(pair, "idx")[0][:60]
b'{"@timestamp":"1970-01-01T00:00:10Z","_id":"r1","_index":"id'
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.documents import prediction_documents
from stream.eventtime import format_utc, seconds
from stream.pairs import Pair
from stream.summary import feature_names_for

OPTION = orjson.OPT_SORT_KEYS
LINE = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
_dumps = orjson.dumps
_MODELS: dict[Any, tuple[bytes, bytes]] = {}
_HEADS: dict[tuple, bytes] = {}


def _model_parts(m: Any, output_names: Any) -> tuple[bytes, bytes]:
    """`"model_name"` … `"node"` (contiguous in sorted order), and `"prediction_names"`
    with `"predictor"`: the same for every pair of a model and output naming."""
    key = (m, output_names)
    parts = _MODELS.get(key)
    if parts is None:
        parts = (
            b',"model_name":' + _dumps(m.model, option=OPTION)
            + b',"model_version":' + _dumps(m.version, option=OPTION)
            + b',"namespace":' + _dumps(m.namespace, option=OPTION)
            + b',"node":' + _dumps(m.node, option=OPTION) + b',"prediction":',
            b',"prediction_names":' + _dumps(output_names or None, option=OPTION)
            + b',"predictor":' + _dumps(m.predictor, option=OPTION) + b',"request_id":')
        # Equal keys must render equally: kept only for str fields and names.
        if all(type(v) is str for v in (m.model, m.version, m.namespace, m.node,
                                        m.predictor, *(output_names or ()))):
            if len(_MODELS) > 4096:
                _MODELS.clear()
            _MODELS[key] = parts
    return parts


def _after_id(index: str, entry: Any, error_type: Any, error: Any) -> bytes:
    """`"_index"` … `"error_type"`; shared by the pairs of an index without an error
    message (the usual case), so kept for those."""
    # Equal keys must render equally: 1 == True, so only a bool entry is a key.
    key = (index, entry, error_type) if error is None and type(entry) is bool else None
    part = _HEADS.get(key) if key is not None else None
    if part is None:
        part = (b',"_index":' + _dumps(index, option=OPTION)
                + b',"entry_node":' + _dumps(entry)
                + (b',"error":false' if error_type is None else b',"error":true')
                + b',"error_message":' + _dumps(error, option=OPTION)
                + b',"error_type":' + _dumps(error_type, option=OPTION))
        if key is not None:
            if len(_HEADS) > 4096:
                _HEADS.clear()
            _HEADS[key] = part
    return part


def document_lines(pair: Pair, index: str, redact: Any = None) -> list[bytes]:
    """The general path: the documents as dicts, dumped one by one (each through
    `redact`, e.g. `stream.redaction.Redactor.document`, when given)."""
    lines = []
    for doc_id, doc in prediction_documents(pair):
        if redact is not None:
            doc = redact(doc)
        doc["_index"], doc["_id"] = index, doc_id
        lines.append(_dumps(doc, option=LINE))
    return lines


def prediction_lines(pair: Pair, index: str) -> list[bytes]:
    """The JSON lines of `pair`'s prediction documents (see the module docstring)."""
    try:
        return _template_lines(pair, index)
    except (TypeError, orjson.JSONEncodeError):
        return document_lines(pair, index)


def _template_lines(pair: Pair, index: str) -> list[bytes]:
    m = pair.model
    rows: list[Any] = pair.rows if pair.rows else [None]
    rid, entry = pair.request_id, pair.entry
    response_time = format_utc(pair.response_time) if pair.response_time else None
    model_part, names_part = _model_parts(m, pair.output_names)
    # The parts before and after the row's own (id, features, prediction, row number),
    # joined once per line rather than concatenated piece by piece.
    head = (b'{"@timestamp":', _dumps(format_utc(pair.request_time)), b',"_id":')
    after_id = _after_id(index, entry, pair.error_type, pair.error)
    latency = None if pair.latency_ns is None else seconds(pair.latency_ns)
    before_prediction = (b',"latency_seconds":', _dumps(latency), model_part)
    tail = (names_part, _dumps(rid, option=OPTION), b',"response_time":',
            _dumps(response_time), b',"row":')
    outputs = pair.outputs or []
    if len(rows) == 1:  # the usual request: one row, its document id the request's
        row = rows[0]
        out = outputs[0] if outputs else None
        prediction = None if out is None else out[0] if len(out) == 1 else out
        if row is None:
            features = b""
        else:
            row_names = feature_names_for(pair, len(row), None)
            features = b',"features":' + _dumps(dict(zip(row_names, row, strict=False)),
                                                option=OPTION)
        return [b"".join((*head, _dumps(rid if entry else f"{rid}-{m.node}"), after_id,
                          features, *before_prediction, _dumps(prediction, option=OPTION),
                          *tail, b"0}\n"))]
    base = rid if entry else f"{rid}-{m.node}"
    n_out = len(outputs)
    head_b, before_b, tail_b = b"".join(head), b"".join(before_prediction), b"".join(tail)
    lines = []
    names: tuple[str, ...] = ()  # set with the first row (width -1 matches none)
    width = -1
    for n, row in enumerate(rows):
        doc_id = f"{base}-item-{n}"
        if n < n_out:
            out = outputs[n]
            prediction = None if out is None else out[0] if len(out) == 1 else out
        else:
            prediction = None
        if row is None:
            features = b""
        else:
            if len(row) != width:
                width = len(row)
                names = feature_names_for(pair, width, None)
            features = b',"features":' + _dumps(dict(zip(names, row, strict=False)),
                                                option=OPTION)
        lines.append(b"".join((head_b, _dumps(doc_id), after_id, features, before_b,
                               _dumps(prediction, option=OPTION), tail_b, b"%d}\n" % n)))
    return lines
