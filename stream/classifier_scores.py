"""scikit-learn's classifier scores, computed with numpy on already-clean class codes.

`stream.performance` computes a window's metrics once per emission and once per
revision. scikit-learn spends most of a call validating its input (`type_of_target`,
`unique_labels`, parameter checks): ~10 ms per window for the seven scores, over
~1,000 windows a million rows. These functions take what `stream.performance` has
already normalized — integer class codes into a sorted label list, float probability
matrices whose columns are in that sorted order — and run the same float operations
scikit-learn 1.9 runs after validation (same arrays, same dtypes, same reductions), so
the results are equal bit for bit; `tests/unit/test_classifier_scores.py` checks that
against sklearn itself on random inputs with ties, missing classes and zero divisions.

>>> t, p = np.array([0, 1, 1, 2]), np.array([0, 1, 0, 2])
>>> s = prf_scores(t, p, 3)
>>> round(s["f1_macro"], 6), accuracy(t, p), confusion(t, p, [0, 1, 2], 3)[1].tolist()
(0.777778, 0.75, [1, 1, 0])
>>> binary_roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
0.75
"""

from __future__ import annotations

import numpy as np


def accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """`accuracy_score`: the mean of the matches (sklearn's `np.average` of the bools)."""
    return float(np.average(true == pred))


def confusion(true: np.ndarray, pred: np.ndarray, order: list[int], k: int) -> np.ndarray:
    """`confusion_matrix(labels=...)` for codes in [0, k); `order` lists codes by row."""
    cm = np.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    idx = np.asarray(order, dtype=np.intp)
    return cm[np.ix_(idx, idx)]


def _prf_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """sklearn's `_prf_divide` with `zero_division=0`."""
    mask = denominator == 0
    denominator = np.asarray(denominator, dtype=np.float64).copy()
    denominator[mask] = 1
    result = np.asarray(numerator, dtype=np.float64) / denominator
    if mask.any():
        result[mask] = 0.0
    return result


def _weighted(a: np.ndarray, weights: np.ndarray) -> float:
    mask = np.isnan(a)
    if mask.all():
        return float("nan")
    return float(np.average(a[~mask], weights=weights[~mask]))


def prf_scores(true: np.ndarray, pred: np.ndarray, k: int) -> dict[str, float]:
    """precision/recall/F1 weighted and F1 macro with `zero_division=0`.

    Codes are in [0, k) and every code occurs in `true` or `pred` (sklearn's label set
    `unique_labels(y_true, y_pred)`, sorted — the order of the codes).
    """
    tp_sum = np.bincount(true[true == pred], minlength=k)
    pred_sum = np.bincount(pred, minlength=k)
    true_sum = np.bincount(true, minlength=k)
    precision = _prf_divide(tp_sum, pred_sum)
    recall = _prf_divide(tp_sum, true_sum)
    beta2 = 1.0
    denom = beta2 * true_sum.astype(np.float64) + pred_sum.astype(np.float64)
    f_score = _prf_divide((1 + beta2) * tp_sum.astype(np.float64), denom)
    return {
        "precision_weighted": _weighted(precision, true_sum),
        "recall_weighted": _weighted(recall, true_sum),
        "f1_weighted": _weighted(f_score, true_sum),
        "f1_macro": float(np.nanmean(f_score)) if k else float("nan"),
    }


def binary_roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """`roc_auc_score` of a 0/1 array (both present) and the positive class's scores."""
    desc = np.argsort(score, kind="stable")[::-1]
    score, y = score[desc], positive[desc].astype(np.float64)
    distinct = np.nonzero(np.diff(score))[0]
    thresholds = np.concatenate([distinct, [y.size - 1]])
    tps = np.cumsum(y, dtype=np.float64)[thresholds]
    fps = 1 + thresholds.astype(np.float64) - tps
    if fps.shape[0] > 2:  # roc_curve's drop_intermediate
        keep = np.where(np.concatenate([[True], np.logical_or(np.diff(fps, 2),
                                                              np.diff(tps, 2)), [True]]))[0]
        fps, tps = fps[keep], tps[keep]
    tps = np.concatenate([[0.0], tps])
    fps = np.concatenate([[0.0], fps])
    fpr, tpr = fps / fps[-1], tps / tps[-1]
    return float(np.trapezoid(tpr, fpr))


def log_loss(true: np.ndarray, proba: np.ndarray) -> float:
    """`log_loss(y_true, proba, labels=...)`: `true` codes index `proba`'s columns."""
    onehot = np.zeros(proba.shape, dtype=np.float64)
    onehot[np.arange(len(true)), true] = 1.0
    eps = np.finfo(proba.dtype).eps
    clipped = np.clip(proba, eps, 1 - eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        temp = onehot * np.log(clipped)
    loss = -np.sum(np.where(onehot == 0.0, 0.0, temp), axis=1)
    return float(np.average(loss))
