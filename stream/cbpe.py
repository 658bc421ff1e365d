"""Confidence-based performance estimation (CBPE): a binary classifier's accuracy,
precision, recall, F1 and ROC AUC on a window, before any label arrives.

The definitions are NannyML 0.13.1's `CBPE` for binary classification (its code is
the oracle; `tests/oracle/` runs it on the same data), with one window as one chunk:

- fit, on reference rows with labels, predicted probabilities and predictions:
  the calibration decision and calibrator of `stream.calibration`; per metric a
  sampling-error constant (std, fraction) from the reference; alert thresholds from
  the *realized* metric over NannyML's `DefaultChunker` cut of the reference (chunks
  of ``rows // 10`` rows in order, a last shorter chunk keeps the rest): mean ± 3 std
  (numpy ``nanmean``/``nanstd``, ddof 0), a lower threshold <= 0 becomes 0 and an
  upper >= 1 becomes 1. Realized F1/precision/recall of a chunk with one class in its
  labels or predictions, and ROC AUC with one label class, are NaN (left out).
- estimate, on a window's probabilities p (calibrated when the fit decided so) and
  predictions ŷ: expected TP = Σ p[ŷ=1], FP = Σ (1 − p)[ŷ=1], FN = Σ p[ŷ=0],
  TN = Σ (1 − p)[ŷ=0]; accuracy (TP + TN) / n, precision TP / (TP + FP), recall
  TP / (TP + FN), F1 TP / (TP + (FP + FN) / 2) (0 when a denominator is 0); ROC AUC:
  rows sorted by descending *uncalibrated* probability (numpy's default sort, reversed),
  cumulative expected TP and FP rounded to 5 decimals, trapezoid area of the curve.
  Sampling error: accuracy std / √n, the others std / √(n × fraction); bounds are
  value ± 3 × sampling error clipped to [0, 1]; alert when the value is outside the
  thresholds. Rows with a NaN probability or prediction are left out.

CBPE assumes no concept shift (p(y | x) as in the reference): under one the estimate
does not follow realized performance, so both are reported.

>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(size=2000); y = (rng.uniform(size=2000) < p).astype(int)
>>> est = CBPE().fit(y, p, (p >= 0.5).astype(int))
>>> e = est.estimate(p[:500], (p[:500] >= 0.5).astype(int))["accuracy"]
>>> round(e.value, 3), e.lower <= e.value <= e.upper, e.alert
(0.752, True, False)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn import metrics as skm

from stream.calibration import isotonic, needs_calibration

METRICS = ("roc_auc", "f1", "precision", "recall", "accuracy")
CHUNKS = 10  # nannyml.chunk.DefaultChunker.DEFAULT_CHUNK_COUNT
SAMPLING_ERROR_RANGE = 3  # nannyml.performance_estimation.confidence_based.metrics


@dataclass(frozen=True)
class Estimate:
    """One metric's estimate on one window (NaN where undefined)."""

    value: float
    sampling_error: float
    lower: float
    upper: float
    lower_threshold: float
    upper_threshold: float
    alert: bool

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and v != v else v)
                for k, v in asdict(self).items()}


def _expected(proba: np.ndarray, pred: np.ndarray) -> tuple[float, float, float, float]:
    pos = pred == 1
    tp = np.sum(np.where(pos, proba, 0))
    fp = np.sum(np.where(pos, 1 - proba, 0))
    fn = np.sum(np.where(pred == 0, proba, 0))
    tn = np.sum(np.where(pred == 0, 1 - proba, 0))
    return tp, fp, fn, tn


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den != 0 else 0.0


def estimated(metric: str, proba: np.ndarray, uncalibrated: np.ndarray,
              pred: np.ndarray) -> float:
    """The estimated `metric` of calibrated `proba` and predictions `pred`."""
    if metric == "roc_auc":
        order = np.argsort(uncalibrated)[::-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            tps = np.cumsum(proba[order])
            fps = 1 + np.arange(len(proba)) - tps
            tp_sums = np.round(np.concatenate(([0.0], tps)), 5)
            fp_sums = np.round(np.concatenate(([0.0], fps)), 5)
            return float(skm.auc(fp_sums / fp_sums[-1], tp_sums / tp_sums[-1]))
    tp, fp, fn, tn = _expected(proba, pred)
    if metric == "accuracy":
        return float((tp + tn) / len(pred))
    if metric == "precision":
        return _ratio(tp, tp + fp)
    if metric == "recall":
        return _ratio(tp, tp + fn)
    return _ratio(tp, tp + 0.5 * (fp + fn))


def realized(metric: str, y_true: np.ndarray, proba: np.ndarray, pred: np.ndarray) -> float:
    """The realized `metric` of one reference chunk, as NannyML's thresholds use it."""
    if metric == "accuracy":
        return float(skm.accuracy_score(y_true, pred))
    if len(np.unique(y_true)) <= 1:
        return float("nan")
    if metric == "roc_auc":
        return float(skm.roc_auc_score(y_true, proba))
    if len(np.unique(pred)) <= 1:
        return float("nan")
    score = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}
    return float(score[metric](y_true, pred, zero_division=0.0))


def sampling_error_components(metric: str, y_true: np.ndarray, proba: np.ndarray,
                              pred: np.ndarray) -> tuple[float, float]:
    """(std, fraction) of `nannyml.sampling_error.binary_classification`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = len(pred)
        hit = y_true == pred
        tp, fp, fn = int(np.sum(hit & (pred == 1))), int(np.sum(~hit & (pred == 1))), \
            int(np.sum(~hit & (pred == 0)))
        if metric == "accuracy":
            return float(np.std(hit.astype(int))), 1.0
        if metric == "precision":
            return float(np.std(np.r_[np.ones(tp), np.zeros(fp)])), float(np.sum(pred) / n)
        if metric == "recall":
            return float(np.std(np.r_[np.ones(tp), np.zeros(fn)])), float(np.sum(y_true) / n)
        if metric == "f1":
            k = tp + fn + fp
            if k == 0:
                return float("nan"), 0.0
            obs = np.r_[np.ones(tp), np.zeros(fn + fp)] * (k / ((fn + fp) * 0.5 + tp))
            return float(np.std(obs)), k / n
        # roc_auc: a Mann-Whitney view of the (minority-positive) reference
        y, p = y_true, proba
        if np.mean(y) > 0.5:
            y, p = abs(np.asarray(y) - 1), 1 - p
        order = np.argsort(p)
        y = y[order]
        ranks = np.unique(y * np.asarray(range(len(p))))[1:]
        n_pos = np.sum(y)
        ser = np.true_divide(ranks - np.arange(len(ranks)), len(y) - n_pos)
        return float(np.std(ser)), float(n_pos / len(y))


def thresholds(values: np.ndarray) -> tuple[float, float]:
    """NannyML's StandardDeviationThreshold (3, 3) with the metric limits [0, 1]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all chunks NaN: NaN thresholds
        mean, std = np.nanmean(values), np.nanstd(values)
    lower, upper = float(mean - std * 3), float(mean + std * 3)
    return (0.0 if lower <= 0 else lower), (1.0 if upper >= 1 else upper)


class CBPE:
    """NannyML's CBPE for one binary classifier; one `estimate` call = one chunk.

    Parameters
    ----------
    metrics
        Any of ``roc_auc``, ``f1``, ``precision``, ``recall``, ``accuracy``.
    chunks
        Reference chunks for the alert thresholds (NannyML's default, 10).
    """

    def __init__(self, metrics: Sequence[str] = METRICS, chunks: int = CHUNKS) -> None:
        unknown = sorted(set(metrics) - set(METRICS))
        if unknown or not metrics:
            raise ValueError(f"metrics must be among {METRICS}, got {list(metrics)}")
        if chunks < 1:
            raise ValueError("chunks must be >= 1")
        self.metrics = tuple(metrics)
        self.chunks = chunks
        self._calibrator = None
        self._components: dict[str, tuple[float, float]] = {}
        self._thresholds: dict[str, tuple[float, float]] = {}

    @property
    def calibrated(self) -> bool:
        """Whether the fit decided that the probabilities need calibration."""
        return self._calibrator is not None

    def fit(self, y_true, proba, pred) -> CBPE:
        """Learn calibration, sampling-error constants and thresholds from the reference
        (labels 0/1, positive-class probabilities, predictions 0/1; no NaN)."""
        y_true = np.asarray(y_true).astype(int)
        proba = np.asarray(proba, dtype=np.float64)
        pred = np.asarray(pred).astype(int)
        n = len(y_true)
        if not (len(proba) == len(pred) == n):
            raise ValueError("labels, probabilities and predictions differ in length")
        if n < self.chunks:
            raise ValueError(f"the reference needs at least {self.chunks} rows, has {n}")
        size = n // self.chunks
        cuts = [slice(i, i + size) for i in range(0, n, size)]
        for m in self.metrics:
            self._components[m] = sampling_error_components(m, y_true, proba, pred)
            chunk_values = [realized(m, y_true[c], proba[c], pred[c]) for c in cuts]
            self._thresholds[m] = thresholds(np.asarray(chunk_values, dtype=np.float64))
        self._calibrator = isotonic(proba, y_true) if needs_calibration(y_true, proba) else None
        return self

    def estimate(self, proba, pred) -> dict[str, Estimate]:
        """Each metric's `Estimate` on one window's probabilities and predictions."""
        if not self._thresholds:
            raise ValueError("fit the estimator on a reference first")
        proba = np.asarray(proba, dtype=np.float64)
        pred = np.asarray(pred, dtype=np.float64)
        keep = ~(np.isnan(proba) | np.isnan(pred))
        raw, pred = proba[keep], pred[keep].astype(int)
        cal = self._calibrator.predict(raw) if self._calibrator is not None and len(raw) else raw
        out = {}
        for m in self.metrics:
            lo_t, hi_t = self._thresholds[m]
            if len(raw) == 0:
                nan = float("nan")
                out[m] = Estimate(nan, nan, nan, nan, lo_t, hi_t, False)
                continue
            value = estimated(m, cal, raw, pred)
            std, fraction = self._components[m]
            with np.errstate(divide="ignore", invalid="ignore"):
                err = float(std / np.sqrt(len(raw) * fraction))
            upper = float(np.minimum(1, value + SAMPLING_ERROR_RANGE * err))
            lower = float(np.maximum(0, value - SAMPLING_ERROR_RANGE * err))
            out[m] = Estimate(value, err, lower, upper, lo_t, hi_t,
                              bool(value < lo_t or value > hi_t))
        return out
