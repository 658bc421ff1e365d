"""Probability calibration for CBPE, as NannyML 0.13.1 decides and fits it.

`needs_calibration` is NannyML's test (`nannyml.calibration.needs_calibration`):
no calibration when the reference has one class or its ROC AUC exceeds 0.999;
otherwise 10 stratified shuffle splits (10 % test, ``random_state=42``: the decision
depends on that seed, so it is reproduced, not re-derived) each fit an isotonic
calibrator on the train part and calibrate the test part; the test parts are
concatenated and calibration is needed when the expected calibration error (10
equal-count bins over the probabilities sorted with numpy's default sort) is smaller
after calibration than before. `isotonic` is the calibrator NannyML uses:
scikit-learn's `IsotonicRegression(out_of_bounds="clip", increasing=True)`.

>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(size=1000)
>>> needs_calibration((rng.uniform(size=1000) < p ** 3).astype(int), p)  # P(y=1) = p³
True
>>> needs_calibration((rng.uniform(size=1000) < p).astype(int), p)  # calibrated already
False
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit

SEED = 42  # nannyml.calibration.needs_calibration's StratifiedShuffleSplit random_state
SPLITS = 10
BINS = 10


def isotonic(proba: np.ndarray, y_true: np.ndarray) -> IsotonicRegression:
    """The fitted calibrator (`.predict(proba)` calibrates)."""
    return IsotonicRegression(out_of_bounds="clip", increasing=True).fit(proba, y_true)


def bin_edges(n: int, bins: int = BINS) -> list[tuple[int, int]]:
    """Index ranges of `bins` equal-count bins over `n` sorted values (the last one
    takes the rest); fewer bins when n <= 2 × bins.

    >>> bin_edges(23, 4)
    [(0, 5), (5, 10), (10, 15), (15, 23)]
    """
    if n <= 2 * bins:
        bins = n // 2
        if bins < 2:
            raise ValueError(f"cannot split {n} values into at least 2 bins")
    width = n // bins
    edges = np.asarray(range(0, n + 1, width))
    edges[-1] = n
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray,
                               edges: list[tuple[int, int]]) -> float:
    order = proba.argsort()  # numpy's default (unstable) sort, as NannyML's
    proba, y_true = proba[order], y_true[order]
    terms = [len(proba[a:b]) / len(proba) * abs(np.mean(proba[a:b]) - np.mean(y_true[a:b]))
             for a, b in edges]
    return float(np.sum(terms))


def needs_calibration(y_true: np.ndarray, proba: np.ndarray) -> bool:
    """Whether isotonic calibration lowers the expected calibration error (see above)."""
    y_true, proba = np.asarray(y_true), np.asarray(proba, dtype=np.float64)
    if np.isnan(y_true.astype(np.float64)).any() or np.isnan(proba).any():
        raise ValueError("reference labels and probabilities must not be NaN")
    if len(np.unique(y_true)) == 1 or roc_auc_score(y_true, proba) > 0.999:
        return False
    split = StratifiedShuffleSplit(n_splits=SPLITS, test_size=0.1, random_state=SEED)
    truth, before, after = [], [], []
    for train, test in split.split(proba, y_true):
        truth.append(y_true[test])
        before.append(proba[test])
        after.append(isotonic(proba[train], y_true[train]).predict(proba[test]))
    y, p0, p1 = np.concatenate(truth), np.concatenate(before), np.concatenate(after)
    edges = bin_edges(len(p0))
    return expected_calibration_error(y, p0, edges) > expected_calibration_error(y, p1, edges)
