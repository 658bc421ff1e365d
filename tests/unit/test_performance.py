"""Window performance metrics against scikit-learn computed on the raw generated arrays."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from stream.decode.labels import Label
from stream.events import ModelRef
from stream.eventtime import seconds_to_ns as ns
from stream.labels import JoinedLabel, Prediction
from stream.performance import (
    WindowPerformance,
    classification_metrics,
    column_classes,
    infer_task,
    read_class,
    regression_metrics,
    task_from_dtype,
)

TOL = 1e-12
M = ModelRef("m", "ns", version="1")


def _joined(outputs, labels, names=None, times=None):
    out = []
    for i, (o, y) in enumerate(zip(outputs, labels, strict=True)):
        t = None if times is None else ns(times[i])  # times in seconds, labels in int ns
        out.append(JoinedLabel(Prediction(f"r{i}", 0, M, 0, "w", o, names),
                               Label(f"r{i}", 0, y, t, "topic")))
    return out


def _window(outputs, labels, predictions=None, names=None, **kw):
    wp = WindowPerformance(**kw)
    for j in _joined(outputs, labels, names):
        wp.update(j)
    return wp.get(predictions=predictions)


def _close(got, want):
    assert got == pytest.approx(want, abs=TOL, rel=0), (got, want)


def _sk(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def _oracle_cls(y, yhat):
    return {
        "accuracy": skm.accuracy_score(y, yhat),
        "precision_weighted": _sk(skm.precision_score, y, yhat, average="weighted"),
        "recall_weighted": _sk(skm.recall_score, y, yhat, average="weighted"),
        "f1_weighted": _sk(skm.f1_score, y, yhat, average="weighted"),
        "f1_macro": _sk(skm.f1_score, y, yhat, average="macro"),
    }


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_probabilities_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, k = 200, 3
    raw = rng.dirichlet(np.ones(k), size=n)
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)  # every class present
    p = raw / raw.sum(axis=1, keepdims=True)
    got = _window(raw.tolist(), y.tolist(), predictions=400, names=("t:0", "t:1", "t:2"))
    yhat = raw.argmax(axis=1)
    for name, want in _oracle_cls(y, yhat).items():
        _close(got[name], want)
    _close(got["roc_auc"], skm.roc_auc_score(y, p, multi_class="ovr", average="weighted"))
    _close(got["log_loss"], skm.log_loss(y, p))
    assert got["confusion_matrix"] == {
        "classes": [0, 1, 2], "matrix": skm.confusion_matrix(y, yhat).tolist()}
    assert (got["labels"], got["label_coverage"], got["task"]) == (n, 0.5, "classification")


def test_rounded_probabilities_are_renormalized():
    rng = np.random.default_rng(7)
    raw = np.round(rng.dirichlet(np.ones(3), size=60), 4)  # as a logger rounds them
    y = rng.integers(0, 3, size=60)
    got = _window(raw.tolist(), y.tolist())
    p = raw / raw.sum(axis=1, keepdims=True)
    _close(got["roc_auc"], skm.roc_auc_score(y, p, multi_class="ovr", average="weighted"))
    _close(got["log_loss"], skm.log_loss(y, p, labels=[0, 1, 2]))


def test_multiclass_with_an_absent_class_follows_sklearn():
    rng = np.random.default_rng(3)
    raw = rng.dirichlet(np.ones(3), size=50)
    y = rng.integers(0, 2, size=50)  # class 2 never the truth
    got = _window(raw.tolist(), y.tolist())
    want = _sk(skm.roc_auc_score, y, raw, multi_class="ovr", average="weighted", labels=[0, 1, 2])
    _close(got["roc_auc"], want)
    _close(got["log_loss"], skm.log_loss(y, raw, labels=[0, 1, 2]))


@pytest.mark.parametrize("seed", range(3))
def test_binary_single_probability_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    p1 = rng.random(300)
    y = (rng.random(300) < p1).astype(int)
    got = _window([[v] for v in p1.tolist()], y.tolist())
    yhat = (p1 > 0.5).astype(int)
    for name, want in _oracle_cls(y, yhat).items():
        _close(got[name], want)
    _close(got["roc_auc"], skm.roc_auc_score(y, p1))
    _close(got["log_loss"], skm.log_loss(y, p1))


def test_binary_threshold_and_two_columns_with_string_classes():
    rng = np.random.default_rng(11)
    p1 = rng.random(100)
    y = np.where(rng.random(100) < p1, "yes", "no")
    got = _window([[v] for v in p1], y.tolist(), task="classification", classes=["no", "yes"],
                  threshold=0.7)
    yhat = np.where(p1 > 0.7, "yes", "no")
    for name, want in _oracle_cls(y, yhat).items():
        _close(got[name], want)
    _close(got["roc_auc"], skm.roc_auc_score(y == "yes", p1))
    two = np.column_stack([1 - p1, p1])
    got2 = _window(two.tolist(), y.tolist(), names=("no", "yes"))
    _close(got2["roc_auc"], skm.roc_auc_score(y, p1))
    _close(got2["log_loss"], skm.log_loss(y, two))
    _close(got2["accuracy"], skm.accuracy_score(y, np.where(p1 > 0.5, "yes", "no")))


def test_unsorted_column_classes_are_reordered_for_sklearn():
    rng = np.random.default_rng(5)
    raw = rng.dirichlet(np.ones(3), size=80)  # columns are c, a, b
    names = ["c", "a", "b"]
    y = rng.choice(names, size=80)
    got = _window(raw.tolist(), y.tolist(), names=tuple(names))
    sorted_p = raw[:, [1, 2, 0]]
    _close(got["roc_auc"], skm.roc_auc_score(y, sorted_p, multi_class="ovr", average="weighted"))
    _close(got["log_loss"], skm.log_loss(y, sorted_p))
    _close(got["accuracy"], skm.accuracy_score(y, np.array(names)[raw.argmax(axis=1)]))
    assert got["confusion_matrix"]["classes"] == ["c", "a", "b"]


def test_class_outputs_without_probabilities():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, size=120)
    yhat = np.where(rng.random(120) < 0.7, y, rng.integers(0, 4, size=120))
    got = _window([[int(v)] for v in yhat], y.tolist())
    for name, want in _oracle_cls(y, yhat).items():
        _close(got[name], want)
    assert got["roc_auc"] is None and got["log_loss"] is None
    want_cm = _sk(skm.confusion_matrix, y, yhat).tolist()
    assert got["confusion_matrix"]["matrix"] == want_cm


def test_configured_classes_fix_the_confusion_matrix_order():
    got = _window([["b"], ["a"], ["b"]], ["b", "b", "a"], classes=["c", "b", "a"])
    assert got["confusion_matrix"] == {
        "classes": ["c", "b", "a"],
        "matrix": skm.confusion_matrix(["b", "b", "a"], ["b", "a", "b"],
                                       labels=["c", "b", "a"]).tolist()}
    # metrics use sklearn's default label set (seen values), not the configured classes
    _close(got["f1_macro"], skm.f1_score(["b", "b", "a"], ["b", "a", "b"], average="macro"))


def test_mixed_string_and_number_labels_meet_as_strings():
    got = _window([[1], [0], [2.0]], ["1", "0", "1"])
    _close(got["accuracy"], 2 / 3)
    assert got["confusion_matrix"]["classes"] == ["0", "1", "2"]


def test_undefined_metrics_are_none():
    one_class = _window([[0.9], [0.8]], [1, 1])
    assert one_class["roc_auc"] is None
    _close(one_class["log_loss"], skm.log_loss([1, 1], [0.9, 0.8], labels=[0, 1]))
    unknown_label = _window([[0.9, 0.1], [0.2, 0.8]], [0, 5])
    assert unknown_label["roc_auc"] is None and unknown_label["log_loss"] is None
    mixed = _window([[0.9, 0.1], [1]], [0, 1])  # not every row has probabilities
    assert mixed["roc_auc"] is None and mixed["accuracy"] == 1.0
    single = _window([[2.5]], [3.0], task="regression")
    assert single["r2"] is None and single["mae"] == 0.5
    keys = {"labels", "accuracy", "precision_weighted", "recall_weighted", "f1_weighted",
            "f1_macro", "roc_auc", "log_loss", "confusion_matrix", "task", "label_coverage",
            "label_delay_seconds"}
    assert set(one_class) == keys


def test_regression_equals_sklearn():
    rng = np.random.default_rng(9)
    y = rng.normal(10, 3, size=150)
    yhat = y + rng.normal(0, 1, size=150)
    got = _window([[v] for v in yhat], y.tolist(), predictions=150)
    assert got["task"] == "regression" and got["labels"] == 150 and got["label_coverage"] == 1.0
    _close(got["mae"], skm.mean_absolute_error(y, yhat))
    _close(got["rmse"], skm.root_mean_squared_error(y, yhat))
    _close(got["r2"], skm.r2_score(y, yhat))
    _close(got["mape"], skm.mean_absolute_percentage_error(y, yhat))
    assert set(got) == {"labels", "mae", "rmse", "r2", "mape", "task", "label_coverage",
                        "label_delay_seconds"}


def test_no_labels_and_unscorable_rows():
    assert WindowPerformance().get(predictions=10) == {"labels": 0, "label_coverage": 0.0}
    assert WindowPerformance().get() == {"labels": 0, "label_coverage": None}
    got = _window([[1.5], ["x"], [2.0]], [1.0, 2.0, 2.5], task="regression")
    assert (got["labels"], got["unscored"]) == (2, 1)
    _close(got["mae"], skm.mean_absolute_error([1.0, 2.5], [1.5, 2.0]))
    bad = _window([[1.7]], [1], task="classification")
    assert bad == {"labels": 0, "unscored": 1, "task": "classification",
                   "label_coverage": None, "label_delay_seconds": None}


def test_label_delay_summary_and_coverage():
    wp = WindowPerformance(task="classification")
    delays = [5.0, 60.0, 61.0, 3600.0, 10.0]
    for j in _joined([[1]] * 5, [1] * 5, times=[100.0 + d for d in delays]):
        wp.update(JoinedLabel(Prediction(j.prediction.request_id, 0, M, ns(100), "w", [1]),
                              j.label))
    wp.update(JoinedLabel(Prediction("nt", 0, M, ns(100), "w", [1]),
                          Label("nt", 0, 1, None, "f")))
    got = wp.get(predictions=12)
    # numpy on the int ns delays, in seconds (`stream.summary.latency_summary`'s definition)
    d_ns = np.array([ns(d) for d in delays], dtype=np.int64)
    assert got["label_delay_seconds"] == {
        "p50": np.percentile(d_ns, 50) / 1e9, "p95": np.percentile(d_ns, 95) / 1e9,
        "max": 3600.0}
    assert got["label_coverage"] == 0.5


def test_read_class_rules():
    assert read_class([0.2, 0.5, 0.3], ("t:0", "t:1", "t:2"))[0] == 1
    assert read_class([[0.2, 0.8]]) == (1, [(0, 0.2), (1, 0.8)])  # nested one level
    assert read_class([2.0, -1.0, 0.5]) == (0, None)  # scores, not probabilities
    assert read_class([0.5]) == (0, [(0, 0.5), (1, 0.5)])  # p == threshold → negative
    assert read_class(0.51, classes=["n", "y"]) == ("y", [("n", 0.49), ("y", 0.51)])
    assert read_class([True]) == (True, None)
    assert read_class([3.0]) == (3, None)
    for bad in ([], [1.7], ["a", "b"], [float("nan"), 0.5]):
        with pytest.raises(ValueError):
            read_class(bad)
    assert column_classes(3, ("t:0", "x", "t:2"), None) == ["t:0", "x", "t:2"]
    assert column_classes(2, None, ["a", "b"]) == ["a", "b"]
    assert column_classes(2, ("t:0",), None) == [0, 1]


def test_task_rules():
    assert infer_task([[0.1, 0.9]], [2.5]) == "classification"
    assert infer_task([[1.5]], ["a"]) == "classification"
    assert infer_task([[1], [2]], [1.0, 2.0]) == "classification"
    assert infer_task([[0.3], [0.9]], [0, 1]) == "classification"
    assert infer_task([[0.3], [0.9]], [0.2, 1]) == "regression"
    assert infer_task([[3.2]], [3]) == "regression"
    assert task_from_dtype("float32") == "regression"
    assert task_from_dtype("object") == task_from_dtype("bool") == "classification"


def test_bad_parameters():
    with pytest.raises(ValueError):
        WindowPerformance(task="ranking")
    with pytest.raises(ValueError):
        WindowPerformance(threshold=1.5)


def test_direct_functions():
    m = classification_metrics(["a", "b"], ["a", "a"])
    assert m["accuracy"] == 0.5 and m["confusion_matrix"]["classes"] == ["a", "b"]
    assert regression_metrics([1.0, 3.0], [1.0, 3.0])["r2"] == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60))
def test_property_class_metrics_equal_sklearn(pairs):
    y = [a for a, _ in pairs]
    yhat = [b for _, b in pairs]
    got = _window([[v] for v in yhat], y, task="classification")
    for name, want in _oracle_cls(y, yhat).items():
        _close(got[name], want)
    want_cm = _sk(skm.confusion_matrix, y, yhat).tolist()
    assert got["confusion_matrix"]["matrix"] == want_cm


def test_read_class_binary_fast_path_matches_general_path():
    import random

    from stream.monitoring import prediction_value
    from stream.performance import read_class

    rng = random.Random(5)
    pool = [0.0, 0.3, 0.5, 0.7, 1.0, 0.2000001, 1.5, -0.1, float("nan"), float("inf"), 2, True]
    for _ in range(3000):
        out = [rng.choice(pool), rng.choice(pool)]
        if rng.random() < 0.5 and all(type(v) is float for v in out):
            out[1] = 1.0 - out[0]
        names = rng.choice([None, ("t:0", "t:1"), ("no", "yes")])
        classes = rng.choice([None, ("a", "b")])
        try:
            want = read_class(tuple(out), names, classes)  # a tuple takes the general path
        except ValueError:
            want = "unscorable"
        try:
            got = read_class(out, names, classes)
        except ValueError:
            got = "unscorable"
        assert repr(got) == repr(want)
        assert repr(prediction_value(out)) == repr(prediction_value(tuple(out)))


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_order_labels_arrive_in_changes_no_digit(task):
    """Replay joins labels in file order, a worker in the order its partitions deliver
    them: a window's metrics must be the same to the last bit either way (a worker's log
    loss differed from the replay's in the last digit before the rows were ordered)."""
    rng = np.random.default_rng(3)
    n = 500
    if task == "classification":
        p = rng.random(n)
        outputs = [[float(1 - q), float(q)] for q in p]
        labels = [int(v) for v in rng.integers(0, 2, n)]
    else:
        outputs = [[float(v)] for v in rng.normal(size=n)]
        labels = [float(v) for v in rng.normal(size=n)]
    joined = _joined(outputs, labels)
    base = WindowPerformance(task=task)
    for j in joined:
        base.update(j)
    want = base.get(predictions=n)
    for seed in range(5):
        wp = WindowPerformance(task=task)
        for i in np.random.default_rng(seed).permutation(n):
            wp.update(joined[i])
        assert wp.get(predictions=n) == want
    # Read in parts (revisions re-score the whole window): the same again.
    wp = WindowPerformance(task=task)
    for i, j in enumerate(reversed(joined)):
        wp.update(j)
        if i == n // 2:
            wp.get(predictions=n)
    assert wp.get(predictions=n) == want
