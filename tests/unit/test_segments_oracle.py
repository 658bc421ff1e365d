"""Per-segment numbers against the existing oracles on the filtered data (issue 16 item 2).

One window of a binary classifier's logs (rows of `tests.fixtures.drift_data`, shifted,
in requests of one to three rows) goes through the replay pipeline with labels and
`segment_columns=("cat",)`. Each segment entry must equal what the oracles give on the
window's rows of that segment alone: the serving counts by counting, drift and
prediction drift by Evidently 0.7.23 (to 1e-9) and the performance by scikit-learn (to
1e-12); `__other__` is the rows of every value not among the top K by rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from stream.decode.labels import Label
from stream.drift.reference import ReferenceProfile
from stream.events import EventKind, ModelRef, PredictionEvent
from stream.eventtime import NS
from stream.monitoring import ModelConfig, Monitoring
from stream.pipeline import Pipeline
from stream.segments import MISSING, OTHER, segment_text
from tests.fixtures.drift_data import FEATURES, frame, rows
from tests.unit.test_drift_oracle import assert_dataset_same, assert_same, oracle

pytestmark = pytest.mark.filterwarnings("ignore")

M = ModelRef("clf", "ns", "node", version="v1")
T0 = 1_793_491_200 * NS  # 2026-11-01
TOP_K = 3


@pytest.fixture(scope="module")
def run():
    ref = frame(500, 1, shifted=False)
    cur = frame(1200, 3, shifted=True)
    rng = np.random.default_rng(7)
    cur["y"] = (rng.random(len(cur)) < cur["score"]).astype(int)
    cur["labelled"] = rng.random(len(cur)) < 0.7
    profile = ReferenceProfile.from_frame(ref[[*FEATURES, "score"]], prediction="score")
    monitoring = Monitoring({"clf": ModelConfig(reference=profile, task="classification")},
                            segment_columns=("cat",), segment_top_k=TOP_K, early_warning=None)
    pipeline = Pipeline(window_seconds=86400, lateness=0, pairing_ttl=60, monitoring=monitoring)
    values = rows(cur, FEATURES)
    sizes = rng.integers(1, 4, len(cur))
    i = request = 0
    cur["rid"], cur["row"] = "", 0
    while i < len(cur):
        n = int(min(sizes[request], len(cur) - i))
        rid = f"r{request}"
        t = T0 + request * NS
        cur.loc[i:i + n - 1, "rid"] = rid
        cur.loc[i:i + n - 1, "row"] = range(n)
        pipeline.process(PredictionEvent(EventKind.REQUEST, rid, M, t, feature_names=tuple(
            FEATURES), rows=values[i:i + n]))
        scores = cur["score"].iloc[i:i + n].tolist()
        pipeline.process(PredictionEvent(EventKind.RESPONSE, rid, M, t + NS // 20,
                                         outputs=[[1 - s, s] for s in scores]))
        for row in range(n):
            if cur["labelled"].iloc[i + row]:
                pipeline.process_label(Label(rid, row, int(cur["y"].iloc[i + row]),
                                             t + 3600 * NS, "file"))
        i += n
        request += 1
    summaries = [s for _, s in pipeline.finish().summaries]
    final = max(summaries, key=lambda s: s.revision)  # every label joined before it closed
    cur["segment"] = [segment_text(v) for v in cur["cat"].astype(object)]
    return profile, ref, cur, final


def _entry_rows(cur: pd.DataFrame, kept: set[str], value: str) -> pd.DataFrame:
    if value == OTHER:
        return cur[~cur["segment"].isin(kept)]
    return cur[cur["segment"] == value]


def _entries(cur: pd.DataFrame, final):
    """(value, its segment entry, the window's rows of it) for every entry of column cat."""
    got = final.segments["cat"]
    kept = set(got) - {OTHER}
    for value, entry in got.items():
        yield value, entry, _entry_rows(cur, kept, value)


def test_the_top_k_values_by_rows_keep_their_entry(run):
    _, _, cur, final = run
    got = final.segments["cat"]
    counts = cur["segment"].value_counts()
    top = sorted(counts.index, key=lambda v: (-counts[v], v))[:TOP_K]
    assert set(got) == {*top, OTHER}
    assert MISSING in set(counts.index)  # None in the column: its own value, ranked too
    assert sum(e["rows"] for e in got.values()) == final.rows == len(cur)
    assert sum(e["predictions"] for e in got.values()) == final.predictions


def test_serving_counts_are_the_segment_rows_and_their_requests(run):
    _, _, cur, final = run
    for value, entry, mine in _entries(cur, final):
        assert entry["rows"] == entry["predictions"] == len(mine), value
        assert entry["requests"] == mine["rid"].nunique(), value
        assert entry["errors"] == 0


def test_drift_of_each_segment_equals_evidently_on_its_rows(run):
    profile, ref, cur, final = run
    for value, entry, rows_of in _entries(cur, final):
        mine = rows_of.reset_index(drop=True)
        assert len(mine) >= 30, value  # enough rows to compare (drift_min_rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ev_drift, ev_pred = oracle(profile, ref, mine)
        assert_dataset_same(entry["drift"], ev_drift)
        assert_same(entry["prediction_drift"], ev_pred)
    assert any(e["drift"]["dataset_drift"] for e in final.segments["cat"].values())


def test_performance_of_each_segment_equals_sklearn_on_its_labels(run):
    _, _, cur, final = run
    for value, entry, mine in _entries(cur, final):
        labelled = mine[mine["labelled"]].sort_values(["rid", "row"])
        y, score = labelled["y"].to_numpy(), labelled["score"].to_numpy()
        pred = (score > 0.5).astype(int)
        perf = entry["performance"]
        assert perf["labels"] == len(labelled), value
        assert perf["label_coverage"] == pytest.approx(len(labelled) / len(mine), abs=1e-12)
        assert perf["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
        assert perf["f1_weighted"] == pytest.approx(
            skm.f1_score(y, pred, average="weighted", zero_division=0), abs=1e-12)
        assert perf["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
        assert perf["log_loss"] == pytest.approx(
            skm.log_loss(y, np.c_[1 - score, score], labels=[0, 1]), abs=1e-12)
    assert sum(e["performance"]["labels"] for e in final.segments["cat"].values()) == \
        final.performance["labels"]


def test_without_segment_columns_a_summary_has_no_segments():
    m = Monitoring()
    p = Pipeline(window_seconds=60, lateness=0, pairing_ttl=5, monitoring=m)
    p.process(PredictionEvent(EventKind.REQUEST, "r", M, T0, rows=[[1.0]]))
    p.process(PredictionEvent(EventKind.RESPONSE, "r", M, T0 + 1, outputs=[[0.2, 0.8]]))
    (_, summary), = p.finish().summaries
    assert "segments" not in summary.to_builtins()


def test_a_revision_scores_each_segment_with_the_late_labels():
    """Labels after the window was emitted: the revision re-scores every segment, with the
    kept values of the first emission (`__other__`: every other value's labels)."""
    monitoring = Monitoring(segment_columns=("c",), segment_top_k=1, label_horizon=3600,
                            early_warning=None)
    p = Pipeline(window_seconds=60, lateness=0, pairing_ttl=5, monitoring=monitoring)
    cats, scores, truth = "aaabbz", [0.8, 0.3, 0.6, 0.9, 0.2, 0.7], [1, 1, 0, 1, 0, 0]
    for i, (c, s) in enumerate(zip(cats, scores, strict=True)):
        t = T0 + i * NS
        p.process(PredictionEvent(EventKind.REQUEST, f"r{i}", M, t, feature_names=("c", "x"),
                                  rows=[[c, float(i)]]))
        p.process(PredictionEvent(EventKind.RESPONSE, f"r{i}", M, t + 1000, outputs=[[1 - s, s]]))
    closer = PredictionEvent(EventKind.REQUEST, "late", M, T0 + 120 * NS, rows=[["a", 0.0]])
    p.process(closer)
    (_, first), = p.advance().summaries
    assert {v: e["performance"]["labels"] for v, e in first.segments["c"].items()} == {
        "a": 0, OTHER: 0}
    for i, y in enumerate(truth):
        p.process_label(Label(f"r{i}", 0, y, T0 + 100 * NS, "file"))
    p.process(PredictionEvent(EventKind.REQUEST, "later", M, T0 + 130 * NS, rows=[["a", 0.0]]))
    (_, revised), = [(k, s) for k, s in p.advance().summaries if s.revision]
    assert revised.revision == 1
    for value, idx in (("a", [0, 1, 2]), (OTHER, [3, 4, 5])):
        y = [truth[i] for i in idx]
        score = np.array([scores[i] for i in idx])
        perf = revised.segments["c"][value]["performance"]
        assert perf["labels"] == 3 and perf["label_coverage"] == 1.0
        assert perf["accuracy"] == pytest.approx(
            skm.accuracy_score(y, (score > 0.5).astype(int)), abs=1e-12)
        assert perf["log_loss"] == pytest.approx(
            skm.log_loss(y, np.c_[1 - score, score], labels=[0, 1]), abs=1e-12)
    # the serving part of each segment is the first emission's
    for value, entry in revised.segments["c"].items():
        assert {k: v for k, v in entry.items() if k != "performance"} == {
            k: v for k, v in first.segments["c"][value].items() if k != "performance"}
