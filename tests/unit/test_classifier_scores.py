"""The numpy classifier scores against scikit-learn itself (the oracle): equal bit for bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from stream import classifier_scores as cs
from stream import performance


def _cases(seed: int, n_cases: int = 60):
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        n = int(rng.integers(1, 400))
        k = int(rng.integers(1, 6))
        true = rng.integers(0, k, n)
        pred = np.where(rng.random(n) < 0.6, true, rng.integers(0, k + 1, n))
        yield true, pred


@pytest.mark.parametrize("seed", range(5))
def test_scores_equal_sklearn(seed):
    for true, pred in _cases(seed):
        labels = sorted(set(true.tolist()) | set(pred.tolist()))
        code = {v: i for i, v in enumerate(labels)}
        t = np.array([code[v] for v in true.tolist()])
        p = np.array([code[v] for v in pred.tolist()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert cs.accuracy(t, p) == skm.accuracy_score(true, pred)
            s = cs.prf_scores(t, p, len(labels))
            for avg, name in (("weighted", "precision_weighted"),):
                assert s[name] == skm.precision_score(true, pred, average=avg, zero_division=0)
            assert s["recall_weighted"] == skm.recall_score(true, pred, average="weighted",
                                                            zero_division=0)
            assert s["f1_weighted"] == skm.f1_score(true, pred, average="weighted",
                                                    zero_division=0)
            assert s["f1_macro"] == skm.f1_score(true, pred, average="macro", zero_division=0)
            order = [*reversed(labels), 99]
            code[99] = len(code)
            m = cs.confusion(t, p, [code[v] for v in order], len(code))
            assert m.tolist() == skm.confusion_matrix(true, pred, labels=order).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_binary_auc_and_log_loss_equal_sklearn(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(60):
        n = int(rng.integers(2, 500))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        score = np.round(rng.random(n), int(rng.integers(1, 4)))  # ties
        proba = np.c_[1 - score, score]
        assert cs.binary_roc_auc(y, score) == skm.roc_auc_score(y, score)
        assert cs.log_loss(y, proba) == skm.log_loss(y, proba, labels=[0, 1])
    for _ in range(20):  # multiclass log loss, probabilities with zeros
        n, k = int(rng.integers(1, 300)), int(rng.integers(3, 6))
        raw = rng.random((n, k)) * (rng.random((n, k)) < 0.8)
        raw[:, 0] += 1e-3
        proba = raw / raw.sum(axis=1, keepdims=True)
        y = rng.integers(0, k, n)
        assert cs.log_loss(y, proba) == skm.log_loss(y, proba, labels=list(range(k)))


def _both(monkeypatch, *args, **kw):
    fast = performance.classification_metrics(*args, **kw)
    with monkeypatch.context() as m:
        m.setattr(performance, "_numpy_metrics", lambda *a, **k: None)
        slow = performance.classification_metrics(*args, **kw)
    return fast, slow


def test_classification_metrics_fast_path_equals_sklearn_path(monkeypatch):
    rng = np.random.default_rng(7)
    for case in range(150):
        n = int(rng.integers(1, 300))
        k = int(rng.integers(2, 5))
        true = rng.integers(0, k, n).tolist()
        p = rng.dirichlet(np.ones(k), n)
        if case % 3 == 0:
            p = np.round(p, 2)
            p = p / p.sum(axis=1, keepdims=True)
        pred = p.argmax(axis=1).tolist()
        proba = [[(c, float(v)) for c, v in enumerate(row)] for row in p]
        classes = None
        if case % 4 == 1:
            names = ["no", "yes", "maybe", "other"][:k]
            true = [names[v] for v in true]
            pred = [names[v] for v in pred]
            proba = [[(names[c], v) for c, v in row] for row in proba]
        elif case % 4 == 2:
            classes = list(range(k))[::-1]
        fast, slow = _both(monkeypatch, true, pred, proba if case % 5 else None, classes)
        assert fast == slow
        assert fast.keys() == slow.keys()


def test_mixed_or_float_labels_use_sklearn(monkeypatch):
    fast, slow = _both(monkeypatch, [0, 1, "1"], [0, 1, 1])
    assert fast == slow
    assert performance._numpy_metrics([0.5], [0], None, [], [0, 0.5]) is None
