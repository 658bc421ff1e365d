"""Label parsing (topic records, files, Seldon feedback) and the label joiner."""

from __future__ import annotations

import itertools

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.decode.labels import (
    Label,
    decode_label_lines,
    decode_label_record,
    feedback_labels,
)
from stream.decode.lines import decode_line
from stream.events import DeadLetter, EventKind, ModelRef, PredictionEvent, SourceCoords
from stream.eventtime import seconds_to_ns as ns
from stream.labels import JoinedLabel, LabelJoiner, Prediction
from stream.pairs import Pair
from stream.state import encode
from stream.windows import WindowBook, WindowKey

IRIS = ModelRef("iris", "seldon", node="classifier", version="1.17.1")


# --- labels topic records -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (b'{"request_id": "r1", "row": 2, "label": 1, "timestamp": 12.5}', ("r1", 2, 1, ns(12.5))),
        (b'{"request_id": "r1", "label": "setosa", "timestamp": "2020-11-06T09:35:09.5Z"}',
         ("r1", 0, "setosa", ns(1604655309.5))),
        (b'{"request_id": "r1", "label": 0.25, "timestamp": "1604655309"}',
         ("r1", 0, 0.25, ns(1604655309))),
        (b'{"request_id": "r1", "label": true}', ("r1", 0, 1, ns(99))),  # record timestamp
        (b'{"request_id": 42, "row": null, "label": 0, "extra": "ignored"}', ("42", 0, 0, ns(99))),
    ],
)
def test_topic_record(record, expected):
    label = decode_label_record(record, fallback_time=ns(99))
    assert isinstance(label, Label)
    assert (label.request_id, label.row, label.value, label.time) == expected
    assert label.source == "topic"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"{", "invalid_json"),
        (b'{"request_id": "r1", "label": NaN}', "non_finite_value"),
        (b'"r1"', "bad_shape"),
        (b'{"label": 1}', "missing_request_id"),
        (b'{"request_id": "", "label": 1}', "missing_request_id"),
        (b'{"request_id": "r1"}', "missing_label"),
        (b'{"request_id": "r1", "label": ""}', "missing_label"),
        (b'{"request_id": "r1", "label": [1, 0]}', "bad_label"),
        (b'{"request_id": "r1", "label": {"a": 1}}', "bad_label"),
        (b'{"request_id": "r1", "label": 1, "row": -1}', "bad_row"),
        (b'{"request_id": "r1", "label": 1, "row": 1.5}', "bad_row"),
        (b'{"request_id": "r1", "label": 1, "row": true}', "bad_row"),
        (b'{"request_id": "r1", "label": 1, "timestamp": "yesterday"}', "bad_time"),
        (b'{"request_id": "r1", "label": 1, "timestamp": [1]}', "bad_time"),
    ],
)
def test_bad_topic_records_are_dead_letters(record, reason):
    coords = SourceCoords("kafka", "predlog.labels", 0, 7)
    dl = decode_label_record(record, coords=coords)
    assert isinstance(dl, DeadLetter)
    assert dl.reason == reason
    assert dl.raw == record and dl.source == coords


@given(st.binary(max_size=200))
def test_topic_decoder_never_raises(raw):
    assert isinstance(decode_label_record(raw), Label | DeadLetter)


# --- label files --------------------------------------------------------------------------

def test_csv_file():
    lines = [
        "\ufeffrequest_id,row,label,timestamp\n",
        "r1,0,1,100\n",
        "\n",
        'r2,1,"setosa",2020-11-06T09:35:09Z\n',
        "r3,,2.5,\n",
        "r4,0,,\n",
        "r5,0,1\n",
        "r6,x,1,\n",
        "r7,0,nan,\n",
    ]
    out = list(decode_label_lines(lines, path="labels.csv"))
    good = [(x.request_id, x.row, x.value, x.time) for x in out if isinstance(x, Label)]
    assert good == [("r1", 0, 1, ns(100)), ("r2", 1, "setosa", ns(1604655309)),
                    ("r3", 0, 2.5, None)]
    assert all(x.source == "file" for x in out if isinstance(x, Label))
    bad = [(x.reason, x.source.path, x.source.line) for x in out if isinstance(x, DeadLetter)]
    assert bad == [("missing_label", "labels.csv", 6), ("bad_shape", "labels.csv", 7),
                   ("bad_row", "labels.csv", 8), ("non_finite_value", "labels.csv", 9)]


def test_csv_without_row_or_timestamp_columns_and_bytes_lines():
    out = list(decode_label_lines([b"label,request_id\r\n", b"0,a\r\n", b"setosa,b\r\n"]))
    assert [(x.request_id, x.row, x.value, x.time) for x in out] == [
        ("a", 0, 0, None), ("b", 0, "setosa", None)]


def test_csv_bad_header_is_one_dead_letter():
    out = list(decode_label_lines(["id,truth\n", "r1,1\n"], path="x.csv"))
    assert [(x.reason, x.source.line) for x in out] == [("bad_label_header", 1)]


def test_ndjson_file():
    lines = [b"\n", b'{"request_id": "r1", "row": 1, "label": 1, "timestamp": 5}\n',
             b"not json\n", b'{"request_id": "r2", "label": "b"}\n']
    out = list(decode_label_lines(lines, path="l.ndjson"))
    assert isinstance(out[0], Label) and (out[0].row, out[0].time) == (1, ns(5))
    assert (out[1].reason, out[1].source.line) == ("invalid_json", 3)
    assert isinstance(out[2], Label) and out[2].value == "b"


def test_empty_file():
    assert list(decode_label_lines([])) == []
    assert list(decode_label_lines(["\n", "  \n"])) == []


# --- Seldon feedback ----------------------------------------------------------------------

def _sample_feedback_line() -> bytes:
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "agents" / "data" / "seldon-sample.ndjson"
    with sample.open("rb") as fh:
        return next(line for line in fh if b"io.seldon.serving.feedback" in line)


def test_feedback_event_from_the_sample():
    event = decode_line(_sample_feedback_line())
    assert event.kind is EventKind.FEEDBACK
    labels = feedback_labels(event)
    assert labels == [Label(event.request_id, 0, 0, event.event_time, "feedback")]


def test_feedback_batch_and_non_feedback():
    fb = PredictionEvent(EventKind.FEEDBACK, "r1", IRIS, ns(5), truth=[1, 0.0, "x", None])
    out = feedback_labels(fb)
    assert [x.value for x in out[:3]] == [1, 0.0, "x"] and [x.row for x in out[:3]] == [0, 1, 2]
    assert out[3].reason == "missing_label"
    assert feedback_labels(PredictionEvent(EventKind.FEEDBACK, "r1", IRIS, ns(5), reward=1.0)) == []
    assert feedback_labels(PredictionEvent(EventKind.RESPONSE, "r1", IRIS, ns(5))) == []


# --- the joiner ---------------------------------------------------------------------------

# `t`: seconds here; predictions and labels carry int ns (`ns`).
def pred(rid: str, row: int = 0, t: float = 100.0, window: str = "w0", model=IRIS, out=None):
    return Prediction(rid, row, model, ns(t), window, out if out is not None else [1])


def lab(rid: str, row: int = 0, value=1, t: float | None = 200.0, source: str = "topic"):
    return Label(rid, row, value, None if t is None else ns(t), source)


def test_label_after_prediction_and_before():
    j = LabelJoiner(horizon_seconds=3600)
    assert j.update(pred("a", t=100.0)) == []
    joined = j.update(lab("a", t=160.0))
    assert joined == [JoinedLabel(pred("a", t=100.0), lab("a", t=160.0))]
    assert joined[0].delay_ns == ns(60)
    assert j.update(lab("b", row=1, value=0, t=150.0)) == []
    (jb,) = j.update(pred("b", row=1, t=120.0, window="w60"))
    assert (jb.label.value, jb.delay_ns, jb.prediction.window_id) == (0, ns(30), "w60")
    assert j.get().joined == 2


def test_duplicate_labels_first_wins_and_duplicate_predictions_ignored():
    j = LabelJoiner(horizon_seconds=3600)
    j.update(lab("a", value=1, t=150.0))
    j.update(lab("a", value=0, t=140.0))  # a different value: still a duplicate
    (joined,) = j.update(pred("a"))
    assert joined.label.value == 1
    assert j.update(lab("a", value=1)) == []
    assert j.update(pred("a")) == []
    s = j.get()
    assert (s.joined, s.duplicate_labels, s.duplicate_predictions) == (1, 2, 1)


def test_unknown_ids_are_unmatched_after_the_horizon():
    j = LabelJoiner(horizon_seconds=100)
    j.update(lab("ghost", t=200.0, source="file"))
    j.update(lab("ghost2", t=200.0, source="feedback"))
    j.update(pred("never-labelled", t=150.0))
    assert j.expire(ns(300.0)) == []  # the labels live until 200 + 100
    s = j.get()  # the prediction (150 + 100 < 300) is gone, never labelled
    assert (s.pending_labels, s.pending_predictions, s.unlabelled_predictions) == (2, 0, 1)
    expired = j.expire(ns(300.5))
    assert sorted(x.request_id for x in expired) == ["ghost", "ghost2"]
    s = j.get()
    assert dict(s.unmatched_labels) == {"file": 1, "feedback": 1}
    assert (s.pending_labels, s.pending_predictions, s.unlabelled_predictions) == (0, 0, 1)


def test_expiry_boundary_and_bounded_state():
    j = LabelJoiner(horizon_seconds=10)
    j.update(pred("a", t=100.0))
    j.expire(ns(110.0))  # watermark == time + horizon: still alive
    assert len(j.update(lab("a", t=109.0))) == 1
    j.update(pred("b", t=100.0))
    j.expire(ns(110.001))
    assert j.update(lab("b", t=111.0)) == []  # b's prediction is gone
    for i in range(1000):
        j.update(pred(f"p{i}", t=float(i)))
        j.update(lab(f"l{i}", t=float(i)))
    j.expire(ns(2000.0))
    s = j.get()
    assert (s.pending_predictions, s.pending_labels, len(j)) == (0, 0, 0)
    assert j._state.heap == [] and not j._state.by_key


def test_label_without_time_is_anchored_at_the_next_watermark():
    j = LabelJoiner(horizon_seconds=10)
    j.update(lab("x", t=None))
    assert j.expire(ns(50.0)) == []  # anchored at 50 → lives until 60
    assert j.expire(ns(60.0)) == []
    assert [x.request_id for x in j.expire(ns(60.5))] == ["x"]
    j2 = LabelJoiner(horizon_seconds=10)
    j2.update(lab("y", t=None))
    (joined,) = j2.update(pred("y"))
    assert joined.delay_ns is None


def test_watermark_never_goes_back():
    j = LabelJoiner(horizon_seconds=10)
    j.expire(ns(100.0))
    j.update(lab("x", t=None))
    j.expire(ns(5.0))  # an older watermark: the label is anchored at 100, not 5
    assert j.expire(ns(110.0)) == []
    assert len(j.expire(ns(110.1))) == 1


def test_late_label_for_an_emitted_window_is_reported_for_a_revision():
    """The window layer's side: a joined pair whose window is already emitted → revision."""
    book = WindowBook(size=ns(60), hold=0)
    j = LabelJoiner(horizon_seconds=86400)
    for rid, t in (("a", 30.0), ("b", 90.0)):
        pair = Pair(IRIS, rid, ns(t), ns(t + 0.1), outputs=[[1]])
        book.add(pair)
        for p in Prediction.rows_of(pair, book.key_of(pair)):
            j.update(p)
    book.take_ready(watermark=ns(60))  # window [0, 60) closed and emitted
    revisions = []
    for joined in j.update(lab("a", t=5000.0)) + j.update(lab("b", t=95.0)):
        key = WindowKey.parse(joined.prediction.window_id, ns(60))
        if book.is_emitted(key):
            revisions.append((joined.prediction.window_id, joined.prediction.request_id))
    assert revisions == [("seldon|iris|1.17.1|classifier|0", "a")]


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_state_survives_a_restart_through_a_json_store(layout):
    """A changelog holds JSON of the state records (`stream.state`); one written by the
    release before them holds the same fields as untagged lists (version 1)."""
    store: dict = {}
    j = LabelJoiner(horizon_seconds=100, store=store)
    j.update(pred("a", t=10.0, out=[0.2, 0.8]))
    j.update(Prediction("b", 1, IRIS, ns(20), "w0", ["x"], ("class",)))
    j.update(lab("c", t=None, source="file"))
    j.update(lab("d", t=30.0))
    j.update(pred("d", t=25.0))
    # a changelog holds JSON: round-trip every value, then start a new joiner on it
    restored = {k: orjson.loads(encode(v)) for k, v in store.items()}
    if layout == "v1":
        # no tag: the old lists, without the fields added since (a prediction's segment)
        restored = {k: v[1:-1] if v[0] == "prediction/2" else v[1:]
                    for k, v in restored.items()}
    j2 = LabelJoiner(horizon_seconds=100, store=restored)
    assert (j2.get().pending_predictions, j2.get().pending_labels) == (3, 2)
    (ja,) = j2.update(lab("a", t=15.0))
    assert (ja.prediction, ja.delay_ns) == (pred("a", t=10.0, out=[0.2, 0.8]), ns(5))
    (jb,) = j2.update(lab("b", row=1, value="x", t=21.0))
    assert jb.prediction.output_names == ("class",)
    assert j2.update(lab("d", t=31.0)) == []  # the duplicate is still known
    assert j2.update(pred("d", t=25.0)) == []
    assert [x.request_id for x in j2.expire(ns(200.0))] == []  # c is anchored at 200 now
    assert [x.request_id for x in j2.expire(ns(300.5))] == ["c"]
    assert len(j2) == 0 and restored == {}


def test_one_label_judges_every_node_of_a_graph():
    j = LabelJoiner(horizon_seconds=3600)
    a = ModelRef("income", "seldon", node="preprocess")
    b = ModelRef("income", "seldon", node="classifier")
    j.update(pred("r", model=a))
    joined = j.update(lab("r"))
    joined += j.update(pred("r", model=b))
    assert sorted(x.prediction.model.node for x in joined) == ["classifier", "preprocess"]
    assert j.get().joined == 2


def test_rows_of_a_batch_response():
    t10, t11 = ns(10), ns(11)
    resp = PredictionEvent(EventKind.RESPONSE, "r", IRIS, t11, outputs=[[0], [1], [2]],
                           output_names=("class",))
    preds = Prediction.rows_of_response(resp, time=t10, window_id="w0")
    assert [(p.key, p.output, p.time, p.output_names) for p in preds] == [
        (("r", 0), [0], t10, ("class",)), (("r", 1), [1], t10, ("class",)),
        (("r", 2), [2], t10, ("class",))]
    failed = PredictionEvent(EventKind.RESPONSE, "r", IRIS, t11, error="boom")
    assert Prediction.rows_of_response(failed, t10, "w0") == []
    pair = Pair(IRIS, "r", t10, t11, outputs=[[0], [1]], output_names=("class",))
    key = WindowKey("seldon", "iris", "1.17.1", "classifier", 0, ns(60))
    got = Prediction.rows_of(pair, key)
    assert [(p.key, p.time, p.window_id, p.output_names) for p in got] == [
        (("r", 0), t10, "seldon|iris|1.17.1|classifier|0", ("class",)),
        (("r", 1), t10, "seldon|iris|1.17.1|classifier|0", ("class",))]
    failed_pair = Pair(IRIS, "r", t10, t11, error_type="http_500")
    assert Prediction.rows_of(failed_pair, key) == []


def test_bad_parameters():
    with pytest.raises(ValueError):
        LabelJoiner(horizon_seconds=-1)
    with pytest.raises(ValueError):
        LabelJoiner(horizon_seconds=float("nan"))
    with pytest.raises(TypeError):
        LabelJoiner(horizon_seconds=1).update("label")


# --- property: the join does not depend on arrival order ----------------------------------

_models = [ModelRef("m", "ns", node=n) for n in ("a", "b")]
_items = st.lists(
    st.tuples(st.sampled_from("pqrs"), st.integers(0, 2), st.sampled_from(["pred", "label"]),
              st.integers(0, 1)),
    max_size=40,
)


def _build(spec):
    items = []
    for rid, row, kind, k in spec:
        if kind == "pred":
            items.append(pred(rid, row, t=float(row), model=_models[k]))
        else:  # the label's value is a function of its key: duplicates agree
            items.append(lab(rid, row, value=f"{rid}{row}", t=float(10 + row + k)))
    return items


def _result(items):
    j = LabelJoiner(horizon_seconds=1e9)
    out = [x for item in items for x in j.update(item)]
    return sorted((x.prediction.key, x.prediction.model.node, x.label.value) for x in out)


@settings(max_examples=200, deadline=None)
@given(_items, st.randoms(use_true_random=False))
def test_join_is_independent_of_arrival_order(spec, rnd):
    items = _build(spec)
    shuffled = items[:]
    rnd.shuffle(shuffled)
    expected = sorted(
        {(p.key, p.model.node, f"{p.request_id}{p.row}")
         for p, lbl in itertools.product(items, items)
         if isinstance(p, Prediction) and isinstance(lbl, Label) and p.key == lbl.key}
    )
    assert _result(items) == expected
    assert _result(shuffled) == expected
