"""Segments at their edges: odd requests, configuration changed across a restart, the
task of a segment (issue 16 item 2; the oracle tests are in test_segments_oracle.py)."""

from __future__ import annotations

from stream.decode.labels import Label
from stream.events import EventKind, ModelRef, PredictionEvent
from stream.eventtime import NS
from stream.labels import JoinedLabel, Prediction
from stream.monitoring import Monitoring
from stream.pairs import Pair
from stream.pipeline import Pipeline
from stream.windows import WindowKey

M = ModelRef("m", "ns", "n", version="v1")
KEY = WindowKey("ns", "m", "v1", "n", 0, 60 * NS)


def _pair(rid, cats, outputs, error=None):
    return Pair(M, rid, 1 * NS, 2 * NS, ("c",), [[c] for c in cats] if cats is not None else None,
                None, outputs, error)


def test_segment_counts_add_up_to_the_window_whatever_the_request_shape():
    """Several values in one request, more outputs than inputs (the extra rows are in no
    segment), no input rows (all `__missing__`), a failure: the segments' rows,
    predictions and errors add up to the window's, and no `__other__` appears while every
    value is kept."""
    m = Monitoring(segment_columns=("c",), segment_top_k=10)
    pairs = [_pair("r1", ["a", "b"], [[0], [1], [1]]),
             _pair("r2", [], [[1]]),
             _pair("r3", ["a"], None, error="server_error")]
    from stream.summary import serving_summary

    summary = serving_summary(KEY, pairs)
    segments = m.extension(KEY, pairs)["segments"]["c"]
    assert set(segments) == {"a", "b", "__missing__"}
    for field in ("rows", "predictions", "errors"):
        assert sum(e[field] for e in segments.values()) == getattr(summary, field), field
    assert {v: e["requests"] for v, e in segments.items()} == {"a": 2, "b": 1, "__missing__": 1}


def _labelled_monitoring(columns, task="auto"):
    from stream.monitoring import ModelConfig

    return Monitoring({"*": ModelConfig(task=task)}, segment_columns=columns)


def test_a_segment_is_scored_as_its_window_is():
    """task=auto: the window's labels decide the task, and its segments use it (a segment
    whose few labels look like classes is not scored as a classifier beside a regression
    window)."""
    p = Pipeline(window_seconds=60, lateness=0, pairing_ttl=5,
                 monitoring=_labelled_monitoring(("c",)))
    values = [("a", 1.0, 1.0), ("a", 0.0, 0.0), ("b", 2.5, 2.0), ("b", 3.7, 4.1)]
    for i, (c, out, y) in enumerate(values):
        p.process(PredictionEvent(EventKind.REQUEST, f"r{i}", M, i * NS, feature_names=("c",),
                                  rows=[[c]]))
        p.process(PredictionEvent(EventKind.RESPONSE, f"r{i}", M, i * NS + 1, outputs=[[out]]))
        p.process_label(Label(f"r{i}", 0, y, 10 * NS, "file"))
    (_, s), = p.finish().summaries
    assert s.performance["task"] == "regression"
    assert {v: e["performance"]["task"] for v, e in s.segments["c"].items()} == {
        "a": "regression", "b": "regression"}


def _emitted_with_segments():
    """A summary emitted with segments by column c (one prediction per value, unlabelled),
    as a worker's changelog restores it."""
    m = _labelled_monitoring(("c", "d"))
    pairs = [Pair(M, f"r{i}", 1 * NS, 2 * NS, ("c", "d"), [[c, d]], None, [[p]])
             for i, (c, d, p) in enumerate([("a", "x", 0.9), ("b", "y", 0.2)])]
    import msgspec

    from stream.summary import serving_summary

    summary = msgspec.structs.replace(serving_summary(KEY, pairs), **m.extension(KEY, pairs))
    return summary, m.segmenter.tags(pairs[0])[0]


def test_segments_turned_off_before_a_restart_keep_what_they_had():
    summary, tag = _emitted_with_segments()
    m = _labelled_monitoring(())  # restarted without PREDLOG_SEGMENT_COLUMNS
    m.add_joined(JoinedLabel(Prediction("r0", 0, M, 1 * NS, KEY.id, [0.9], None, tag),
                             Label("r0", 0, 1, 5 * NS, "file")))
    m.restore_emitted(KEY, summary)
    (_, revised), = m.revisions(final=True)
    assert revised.performance["labels"] == 1
    assert revised.segments == summary.segments


def test_labels_are_filed_by_column_name_after_the_columns_were_reordered():
    summary, tag = _emitted_with_segments()
    assert tag == (("c", "a"), ("d", "x"))
    m = _labelled_monitoring(("d", "c"))  # restarted with the columns in another order
    m.add_joined(JoinedLabel(Prediction("r0", 0, M, 1 * NS, KEY.id, [0.9], None, tag),
                             Label("r0", 0, 1, 5 * NS, "file")))
    m.restore_emitted(KEY, summary)
    (_, revised), = m.revisions(final=True)
    labels = {c: {v: e["performance"]["labels"] for v, e in entries.items()}
              for c, entries in revised.segments.items()}
    assert labels == {"c": {"a": 1, "b": 0}, "d": {"x": 1, "y": 0}}
