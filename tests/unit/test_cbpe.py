"""CBPE: the estimator's contract (NannyML agreement is in tests/oracle), the reference
rows it is fitted on (profile and `predlog reference build`)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from typer.testing import CliRunner

from agents.reference_cli import app, load_reference
from sinks.openmetrics_file import OpenMetricsFileSink
from stream.cbpe import CBPE, estimated
from stream.decode.labels import Label
from stream.drift.reference import ReferenceProfile
from stream.events import ModelRef
from stream.eventtime import seconds_to_ns as ns
from stream.labels import LabelJoiner
from stream.monitoring import ModelConfig, Monitoring
from stream.pairs import Pair
from stream.window_summary import WindowSummary
from stream.windows import WindowKey


def _reference(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(int)
    return y, p, (p > 0.5).astype(int)


def test_bad_parameters_and_unfitted_use_raise():
    with pytest.raises(ValueError):
        CBPE(metrics=["mae"])
    with pytest.raises(ValueError):
        CBPE(chunks=0)
    with pytest.raises(ValueError):
        CBPE().estimate([0.5], [1])
    with pytest.raises(ValueError):
        CBPE().fit([0, 1], [0.2, 0.8], [0, 1])  # fewer rows than reference chunks


def test_estimates_of_calibrated_probabilities_follow_the_realized_metric():
    """On calibrated scores (no concept shift) the expected confusion matrix is the mean
    of the realized one: over a large window they meet (up to the isotonic calibrator's
    steps, which NannyML's decision may switch on even for calibrated scores)."""
    y, p, pred = _reference(20_000)
    est = CBPE().fit(y, p, pred)
    rng = np.random.default_rng(1)
    q = rng.uniform(size=200_000)
    truth, qpred = (rng.uniform(size=q.size) < q).astype(int), (q > 0.5).astype(int)
    got = est.estimate(q, qpred)
    realized = {"accuracy": skm.accuracy_score(truth, qpred),
                "precision": skm.precision_score(truth, qpred),
                "recall": skm.recall_score(truth, qpred), "f1": skm.f1_score(truth, qpred),
                "roc_auc": skm.roc_auc_score(truth, q)}
    for metric, value in realized.items():
        assert got[metric].value == pytest.approx(value, abs=0.02), metric
        assert got[metric].lower <= got[metric].value <= got[metric].upper


def test_nan_rows_are_left_out_and_an_empty_window_is_nan():
    y, p, pred = _reference()
    est = CBPE().fit(y, p, pred)
    q = np.array([0.1, 0.9, 0.7, 0.3])
    a = est.estimate(np.r_[q, np.nan], np.r_[(q > 0.5).astype(float), 1.0])
    b = est.estimate(q, (q > 0.5).astype(int))
    assert a["f1"] == b["f1"]
    empty = est.estimate([np.nan], [1])["accuracy"].as_dict()
    assert empty["value"] is None and empty["alert"] is False


def test_estimated_metrics_of_certain_predictions_are_exact():
    p = np.array([1.0, 1.0, 0.0, 0.0])
    pred = np.array([1, 0, 0, 1])  # one TP, one FN, one TN, one FP
    assert estimated("accuracy", p, p, pred) == 0.5
    assert estimated("precision", p, p, pred) == 0.5
    assert estimated("f1", p, p, pred) == 0.5


def test_profile_keeps_the_reference_scores_without_pickle(tmp_path):
    y, p, pred = _reference(500)
    df = pd.DataFrame({"x": np.arange(500.0), "label": y, "p": p})
    profile = ReferenceProfile.from_frame(df, target="label", probability="p")
    assert list(profile.features) == ["x"]  # the probability is a role, not a feature
    data = profile.to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert {"scores/target.npy", "scores/probability.npy", "scores/predicted.npy"} <= set(
            z.namelist())
    back = ReferenceProfile.from_bytes(data).scores
    assert back.target.tolist() == y.tolist() and back.predicted.tolist() == pred.tolist()
    assert back.probability.tolist() == p.tolist()
    with pytest.raises(ValueError, match="0/1"):
        ReferenceProfile.from_frame(df.assign(label=y + 1), target="label", probability="p")
    with pytest.raises(ValueError, match="target"):
        ReferenceProfile.from_frame(df, probability="p")


def test_reference_build_stores_the_cbpe_rows(tmp_path):
    y, p, _ = _reference(300)
    src, out = tmp_path / "ref.csv", tmp_path / "ref.npz"
    pd.DataFrame({"x": np.arange(300.0), "label": y, "p": p,
                  "cls": (p > 0.3).astype(int)}).to_csv(src, index=False)
    result = CliRunner().invoke(app, ["build", str(src), "--out", str(out), "--target", "label",
                                      "--probability", "p", "--predicted", "cls"])
    assert result.exit_code == 0, result.output
    assert "CBPE rows: 300" in result.output
    scores = load_reference(out).scores
    assert scores.predicted.tolist() == (p > 0.3).astype(int).tolist()
    assert scores.probability_column == "p"


# -- wiring: Monitoring's summary extension and the sinks ------------------------------------

IRIS = ModelRef("churn", "seldon", node="classifier", version="1")


def _window_pairs(n=300, seed=3):
    rng = np.random.default_rng(seed)
    q = rng.uniform(size=n)
    pairs = [Pair(IRIS, f"r{i}", ns(10.0 + i * 0.01), ns(10.1 + i * 0.01), outputs=[[1 - v, v]])
             for i, v in enumerate(q.tolist())]
    return pairs, q


def test_monitoring_puts_the_cbpe_estimate_in_the_window_summary_and_keeps_it_in_revisions():
    y, p, _ = _reference(2000)
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": p, "label": y, "p": p}),
                                          target="label", probability="p")
    mon = Monitoring({"churn": ModelConfig(reference=profile, task="classification")})
    key = WindowKey("seldon", "churn", "1", "classifier", 0, ns(60))
    pairs, q = _window_pairs()
    joiner = LabelJoiner(mon.label_horizon)  # stage 1's
    for pair in pairs:
        assert joiner.add_pair(pair, key.id) == []
    summary = WindowSummary(model="churn", version="1", namespace="seldon", node="classifier",
                            window_start="1970-01-01T00:00:00Z",
                            window_end="1970-01-01T00:01:00Z", requests=len(pairs),
                            rows=len(pairs), predictions=len(pairs), errors=0,
                            **mon.extension(key, pairs))
    est = summary.performance["estimated"]
    # the same numbers as the estimator itself on the window's probabilities
    scores = profile.scores
    direct = CBPE().fit(scores.target, scores.probability, scores.predicted).estimate(
        [v / ((1 - v) + v) for v in q.tolist()], (q > 0.5).astype(int))
    assert est["rows"] == len(q) and summary.performance["labels"] == 0
    assert est["metrics"] == {m: e.as_dict() for m, e in direct.items()}
    mon.on_emitted(key, summary)
    for i, v in enumerate(q[:100].tolist()):  # late labels: a revision with realized values
        for joined in joiner.update(Label(f"r{i}", 0, int(v > 0.5), ns(500), "topic")):
            mon.add_joined(joined)
    [(_, revised)] = mon.revisions(final=True)
    assert revised.performance["labels"] == 100
    assert revised.performance["estimated"] == est  # realized beside the estimate


def test_no_estimate_without_reference_scores():
    y, p, _ = _reference(200)
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": p, "label": y}), target="label")
    mon = Monitoring({"churn": ModelConfig(reference=profile)})
    key = WindowKey("seldon", "churn", "1", "classifier", 0, ns(60))
    pairs, _ = _window_pairs(50)
    assert "estimated" not in mon.extension(key, pairs)["performance"]


def test_sinks_export_the_estimate_and_its_band():
    perf = {"labels": 0, "estimated": {"rows": 3, "calibrated": True, "metrics": {
        "accuracy": {"value": 0.8, "sampling_error": 0.01, "lower": 0.77, "upper": 0.83,
                     "lower_threshold": 0.75, "upper_threshold": 0.9, "alert": False},
        "roc_auc": {"value": None, "sampling_error": None, "lower": None, "upper": None,
                    "lower_threshold": 0.6, "upper_threshold": 1.0, "alert": False}}}}
    summary = WindowSummary(model="churn", version="1", namespace="seldon", node="classifier",
                            window_start="2020-01-01T00:00:00Z",
                            window_end="2020-01-01T00:05:00Z", requests=3, rows=3,
                            predictions=3, errors=0, performance=perf)
    sink = OpenMetricsFileSink()
    sink.add_summary(summary)
    text = sink.render()
    labels = 'model_name="churn",model_version="1",namespace="seldon",node="classifier"'
    assert f'model_performance_estimated{{{labels},metric="accuracy"}} 0.8 1577837100' in text
    assert f'model_performance_estimated_upper{{{labels},metric="accuracy"}} 0.83' in text
    assert f'model_performance_estimated_lower_threshold{{{labels},metric="roc_auc"}} 0.6' in text
    assert 'model_performance_estimated{' + labels + ',metric="roc_auc"}' not in text
    families = {f.name: f for f in estimated_families_of(summary)}
    assert [s.value for s in families["model_performance_estimated_lower"].samples] == [0.77]


def estimated_families_of(summary):
    from sinks.prometheus import PrometheusSink

    sink = PrometheusSink(clock=lambda: 400.0)
    sink.add_summary(summary, 300.0)
    return [f for f in sink.collect() if f.name.startswith("model_performance_estimated")]


def test_demo_lead_counts_labels_known_at_each_time(tmp_path):
    """Window 1 (days 7-14): the estimate signals at its close (day 14); its labels are
    all wrong but arrive on day 30, so the realized accuracy can only signal then."""
    import json

    from agents.demo_lead import estimate_lead

    day = 86400.0

    def iso(t):
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    est = {"rows": 40, "calibrated": False, "metrics": {"accuracy": {
        "value": 0.9, "lower_threshold": 0.7}}}
    low = {**est, "metrics": {"accuracy": {"value": 0.6, "lower_threshold": 0.7}}}
    windows = [{"window_start": iso(0), "window_end": iso(7 * day),
                "performance": {"estimated": est}},
               {"window_start": iso(7 * day), "window_end": iso(14 * day),
                "performance": {"estimated": low}}]
    (tmp_path / "windows.jsonl").write_text("".join(json.dumps(w) + "\n" for w in windows))
    preds, labels = [], ["request_id,row,label,timestamp"]
    for i in range(40):
        t = 8 * day + i * 60
        preds.append({"@timestamp": iso(t), "request_id": f"r{i}", "row": 0, "error": False,
                      "prediction": [0.2, 0.8]})  # predicted 1
        labels.append(f"r{i},0,0,{iso(30 * day + i)}")  # wrong, late
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    (tmp_path / "labels.csv").write_text("\n".join(labels) + "\n")
    lead = estimate_lead(tmp_path, tmp_path / "labels.csv", since=iso(0))
    assert lead.estimate_time == 14 * day
    assert lead.realized_time == 30 * day + 29  # the 30th label (min_labels)
    assert lead.lead_weeks == pytest.approx((16 * day + 29) / (7 * day))
