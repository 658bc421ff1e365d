"""Drift, ground truth and performance for the windows of one window stage.

`Monitoring` plugs into `WindowStage` as its summary extension and hears about every
new pair and every joined label:
- drift: the window's logged input rows (answered or not) and successful outputs
  against the model's reference profile (`stream.drift.WindowDrift`), plus river
  early warnings fed, in request order, with the means of blocks of 10 rows;
- labels: predictions and labels meet in stage 1's `LabelJoiner` (either order, within
  the horizon; `stream.pipeline.PairingStage`, in both drivers); each joined label
  (`add_joined`) counts in the window of its prediction;
- performance: `WindowPerformance` of the window's joined labels. A label that joins
  after its window was emitted makes that window due for a revision: `revisions()`
  returns the summary again with `revision` + 1 and the new performance;
- estimated performance: for a model whose reference profile holds CBPE rows
  (`ReferenceProfile.scores`), the window's binary outputs (read as `read_class` reads
  them: the positive-class probability and the predicted class) are one CBPE chunk:
  ``performance.estimated = {"rows", "calibrated", "metrics": {accuracy, precision,
  recall, f1, roc_auc: {value, sampling_error, lower, upper, lower_threshold,
  upper_threshold, alert}}}`` (`stream.cbpe`; NaN → null). It is there from the first
  emission, before any label; the realized metrics are the other `performance` fields
  (binary `accuracy` and `roc_auc` compare directly), filled in as labels join, and a
  revision keeps the window's estimate beside them.

The prediction value compared with the reference's prediction column is the output
itself when a row holds one value, the positive-class probability when it holds two
probabilities (binary classifier), else the index of the largest value (the class).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

import msgspec
import numpy as np

from stream.cbpe import CBPE
from stream.drift.bootstrap import BootstrapReference
from stream.drift.reference import ReferenceProfile
from stream.drift.window import WindowDrift
from stream.eventtime import seconds_to_ns
from stream.labels import JoinedLabel
from stream.pairs import Pair
from stream.performance import WindowPerformance, read_class
from stream.segments import OTHER, Segmenter, kept_value, split
from stream.state import BootstrapState
from stream.summary import NUMBER_TYPES, TEXT_TYPES, feature_names_for, serving_counts
from stream.window_summary import WindowSummary
from stream.windows import WindowKey

ANY_MODEL = "*"


@dataclass(frozen=True)
class ModelConfig:
    """How one model is monitored."""

    reference: ReferenceProfile | None = None
    task: str = "auto"
    classes: tuple | None = None
    threshold: float = 0.5


EARLY_WARNING_BLOCK = 10


def block_means(rows: list[list[Any]], block: int = EARLY_WARNING_BLOCK) -> list[list[Any]]:
    """Column means of consecutive blocks of rows (numbers only; other values: None).

    The river detectors see one value per block per column: a sudden change in the mean
    still shows within a block or two, at a tenth of the cost of feeding every row.

    >>> block_means([[1, "a"], [3, "b"], [5, "c"]], block=2)
    [[2.0, None], [5.0, None]]
    """
    fast = _block_means_by_column(rows, block)
    if fast is not None:
        return fast
    return _block_means_by_cell(rows, block)


_EXACT_INT = 2.0 ** 48  # ten values below this sum exactly in float64, as ints do in Python


def _block_means_by_column(rows: list[list[Any]], block: int) -> list[list[Any]] | None:
    """`block_means` of equal-width rows, column by column: numeric columns with numpy
    (`_numeric_means`), the others cell by cell; None for ragged or empty rows."""
    if not rows or len(set(map(len, rows))) != 1 or not rows[0]:
        return None
    n = len(rows)
    columns = []
    blocks = range(0, n, block)
    for col in zip(*rows, strict=True):
        means: Sequence[float | None] | None = _numeric_means(col, block)
        if means is None:
            if TEXT_TYPES.issuperset(map(type, col)):  # text: no block has a number
                means = [None] * len(blocks)
            else:
                means = [_mean(col[i:i + block]) for i in blocks]
        columns.append(means)
    return [list(means) for means in zip(*columns, strict=True)]


def _numeric_means(col: tuple, block: int) -> list[float] | None:
    """Block means of one column of plain numbers; None when it holds anything else. The
    sums are taken value by value in row order, as `sum` does (0.0 + v0 + v1 ...), so
    the means are the same floats. NaN (skipped by the definition), inf (inf - inf)
    and large values (int sums above 2**53 are exact in Python, not in float64) are
    left to the definition."""
    if not NUMBER_TYPES.issuperset(map(type, col)):
        return None
    try:
        arr = np.array(col, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    if not np.isfinite(arr).all() or np.abs(arr).max() >= _EXACT_INT:
        return None
    n = len(arr)
    full = n - n % block
    out: list[float] = []
    if full:
        blocks = arr[:full].reshape(full // block, block)
        acc = np.zeros(full // block)
        for j in range(block):
            acc = acc + blocks[:, j]
        out = (acc / block).tolist()
    if full < n:
        acc = np.zeros(1)
        for j in range(full, n):
            acc = acc + arr[j]
        out.append(float((acc / (n - full))[0]))
    return out


def _mean(values: Any) -> float | None:
    vals = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)
            and v == v]
    return sum(vals) / len(vals) if vals else None


def _block_means_by_cell(rows: list[list[Any]], block: int) -> list[list[Any]]:
    """`block_means`, value by value (the definition the numpy path keeps to)."""
    out = []
    for i in range(0, len(rows), block):
        means = []
        # Columns of the block; a short row's missing cells are None, which is skipped.
        for col in zip_longest(*rows[i:i + block]):
            vals = [v for v in col if isinstance(v, int | float) and not isinstance(v, bool)
                    and v == v]
            means.append(sum(vals) / len(vals) if vals else None)
        out.append(means)
    return out


def prediction_value(output: list[Any] | None) -> Any:
    """The value drift compares for one output row (see the module docstring).

    >>> [prediction_value(o) for o in ([0.3], [0.2, 0.8], [0.1, 0.7, 0.2], ["cat"], None)]
    [0.3, 0.8, 1, 'cat', None]
    """
    if not output:
        return None
    if type(output) is list and len(output) == 2 and type(output[0]) is float \
            and type(output[1]) is float:  # the common binary case, without the generator
        return output[1] if abs(sum(output) - 1.0) <= 0.01 else int(output[1] > output[0])
    if len(output) == 1:
        return output[0]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in output):
        if len(output) == 2 and abs(sum(output) - 1.0) <= 0.01:
            return output[1]
        return max(range(len(output)), key=output.__getitem__)
    return None


def binary_scores(pairs: list[Pair], classes=None, threshold: float = 0.5
                  ) -> tuple[list[float], list[int]]:
    """Positive-class probabilities and predicted classes (1 = positive) of the window's
    binary-classifier output rows, read as `stream.performance.read_class` reads them;
    other rows are left out.

    >>> from stream.events import ModelRef
    >>> m = ModelRef("m", "ns", "clf", "p", "v1")
    >>> binary_scores([Pair(m, "r", 0.0, 1.0, outputs=[[0.3, 0.7], [0.9, 0.1], ["cat"]]),
    ...                Pair(m, "s", 0.0, 1.0, outputs=[[0.2]])])
    ([0.7, 0.1, 0.2], [1, 0, 0])
    """
    proba: list[float] = []
    pred: list[int] = []
    for p in pairs:
        if not p.succeeded or not p.outputs:
            continue
        for row in p.outputs:
            try:
                cls, probs = read_class(row, p.output_names, classes, threshold)
            except ValueError:
                continue
            if probs is None or len(probs) != 2:
                continue
            proba.append(probs[1][1])
            pred.append(1 if cls == probs[1][0] else 0)
    return proba, pred


def _scored_rows(pairs: list[Pair]) -> int:
    """Output rows of the successful pairs: what label coverage divides by."""
    return sum(len(p.outputs or ()) for p in pairs if p.succeeded)


class Monitoring:
    def __init__(self, models: Mapping[str, ModelConfig] | None = None, *,
                 label_horizon: float = 7 * 86400.0, drift_min_rows: int = 30,
                 drift_cap: int = 50_000, early_warning: str | None = "adwin",
                 seed: int = 0, report_every: int = 0, revise_growth: float = 0.1,
                 bootstrap_seconds: float = 86400.0, bootstrap_rows: int = 0,
                 segment_columns: Sequence[str] = (), segment_top_k: int = 10) -> None:
        self.revise_growth = revise_growth
        # Per-segment numbers (`stream.segments`): None without segment columns. Stage 1
        # (`stream.pipeline.PairingStage`) uses the same segmenter to tag predictions.
        if segment_top_k < 1:
            raise ValueError("segment_top_k must be >= 1")
        self.segmenter = (Segmenter(segment_columns, self._schema_of) if segment_columns
                          else None)
        self.segment_top_k = segment_top_k
        # window id -> (segment column, value) -> its joined labels
        self._seg_perf: dict[str, dict[tuple[str, str], WindowPerformance]] = {}
        # A reference from a model's own first traffic, where none is configured
        # (`stream.drift.bootstrap`; bootstrap_rows 0: none). Keyed "namespace|model|node".
        self.bootstrap_seconds, self.bootstrap_rows = bootstrap_seconds, bootstrap_rows
        self._bootstraps: dict[str, BootstrapReference] = {}
        self._bootstrap_changed: set[str] = set()
        # Bootstrap profiles to send with the summary of the first window compared with
        # them (MLflow logs them as that run's artifact), by window id.
        self.new_references: dict[str, ReferenceProfile] = {}
        if report_every < 0:
            raise ValueError("report_every must be >= 0")
        self.report_every = report_every  # keep the window frame of every n-th drift window
        self.report_frames: list[tuple[WindowKey, ReferenceProfile, Any]] = []
        self._drift_windows: dict[str, int] = {}
        self.models = dict(models or {})
        self.label_horizon = label_horizon
        self.drift_min_rows = drift_min_rows
        self.drift_cap = drift_cap
        self.early_warning = early_warning
        self.seed = seed
        # Labels join in stage 1 (`stream.pipeline.PairingStage`, both drivers); what
        # joined arrives here with `add_joined`. The horizon also bounds revisions.
        self.label_horizon_ns = (seconds_to_ns(label_horizon) if math.isfinite(label_horizon)
                                 else label_horizon)
        self._perf: dict[str, WindowPerformance] = {}
        self._emitted: dict[str, tuple[WindowKey, WindowSummary]] = {}
        self._due: set[str] = set()
        self._cbpe: dict[int, CBPE] = {}  # id(reference scores) -> fitted estimator

    def config_for(self, model: str) -> ModelConfig:
        return self.models.get(model) or self.models.get(ANY_MODEL) or ModelConfig()

    def _schema_of(self, model: str) -> tuple[str, ...] | None:
        """The model's reference columns: the names of a payload without names."""
        reference = self.config_for(model).reference
        return tuple(reference.features) if reference is not None else None

    def _new_performance(self, model: str) -> WindowPerformance:
        cfg = self.config_for(model)
        return WindowPerformance(cfg.task, cfg.classes, cfg.threshold)

    # -- input ------------------------------------------------------------------------------
    def _joined(self, joined: list[JoinedLabel]) -> None:
        for j in joined:
            wid = j.prediction.window_id
            perf = self._perf.get(wid)
            if perf is None:
                perf = self._perf[wid] = self._new_performance(j.prediction.model.model)
            perf.update(j)
            segment = j.prediction.segment
            if segment and self.segmenter is not None:
                by_segment = self._seg_perf.setdefault(wid, {})
                for column, value in segment:
                    sp = by_segment.get((column, value))
                    if sp is None:
                        sp = by_segment[(column, value)] = self._new_performance(
                            j.prediction.model.model)
                    sp.update(j)
            if wid in self._emitted:
                self._due.add(wid)

    def add_joined(self, joined: JoinedLabel) -> None:
        """A label joined in stage 1 counts in its prediction's window."""
        self._joined([joined])

    # -- summaries ------------------------------------------------------------------------------
    def extension(self, key: WindowKey, pairs: list[Pair]) -> dict[str, Any]:
        """The drift, prediction drift, early-warning and performance parts of a summary."""
        out: dict[str, Any] = {}
        reference = self.config_for(key.model).reference
        bootstrap = None
        if reference is None and self.bootstrap_rows:
            bootstrap, taken = self._bootstrap(key, pairs)
            reference = None if taken else bootstrap.profile
        if reference is None:
            out["drift"] = ({"status": "bootstrapping", "reference_rows": bootstrap.rows}
                            if bootstrap is not None else {"status": "no_reference"})
            out["prediction_drift"] = None
        else:
            out.update(self._drift(key, reference, pairs))
            out["reference"] = {**reference.origin, "rows": reference.rows}
        out["performance"] = self._performance(key, _scored_rows(pairs))
        estimated = self._estimated(key, pairs)
        if estimated is not None:
            out["performance"]["estimated"] = estimated
        if self.segmenter is not None:
            out["segments"] = self._segments(key, reference, pairs, out)
        return out

    def _segments(self, key: WindowKey, reference: ReferenceProfile | None,
                  pairs: list[Pair], whole: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Per segment column and kept value (`stream.segments.split`): the serving counts,
        drift and performance of the window's pairs cut down to the segment's rows, by the
        same code as the window's (drift without early warnings or reports; a window that
        is not compared, e.g. bootstrapping, gives each segment its drift status). A
        segment's performance is scored as the window's task, its label coverage is its
        labels over its `predictions`."""
        assert self.segmenter is not None
        task = whole["performance"].get("task")
        out: dict[str, dict[str, Any]] = {}
        for column, groups in split(pairs, self.segmenter, self.segment_top_k).items():
            kept = {v for v in groups if v != OTHER}
            entries = {}
            for value, sub in groups.items():
                entry: dict[str, Any] = serving_counts(sub)
                if reference is None:
                    entry["drift"], entry["prediction_drift"] = whole["drift"], None
                else:
                    entry.update(self._drift(key, reference, sub, extras=False))
                entry["performance"] = self._segment_performance(
                    key, column, value, kept, entry["predictions"], task)
                entries[value] = entry
            out[column] = entries
        return out

    def _segment_performance(self, key: WindowKey, column: str, value: str, kept: set[str],
                             predictions: int, task: str | None) -> dict[str, Any]:
        """Performance of the labels joined to the predictions of one segment (`__other__`:
        of every value not kept)."""
        by_segment = self._seg_perf.get(key.id, {})
        if value == OTHER:
            parts = [p for (col, v), p in sorted(by_segment.items())
                     if col == column and kept_value(v, kept) == OTHER]
            perf = (WindowPerformance.merged(parts) if parts else None)
        else:
            perf = by_segment.get((column, value))
        if perf is None:
            return {"labels": 0, "label_coverage": 0.0 if predictions else None}
        return perf.get(predictions=predictions, task=task)

    def _bootstrap(self, key: WindowKey, pairs: list[Pair]) -> tuple[BootstrapReference, bool]:
        """The model node's bootstrap reference, offered this window first, and whether it
        took the window in (then the window is not compared). A profile used for the first
        time is announced in `new_references`."""
        bkey = f"{key.namespace}|{key.model}|{key.node}"
        b = self._bootstraps.get(bkey)
        if b is None:
            b = self._bootstraps[bkey] = BootstrapReference(self.bootstrap_seconds,
                                                            self.bootstrap_rows)
        if not b.complete:
            names, rows, outputs = [], [], []
            for p in pairs:
                if not p.rows:
                    continue
                names.append(feature_names_for(p, len(p.rows[0]), None))
                rows.append(p.rows)
                outputs.append([prediction_value(o) for o in p.outputs]
                               if p.succeeded and p.outputs else None)
            taken = b.offer(key.start, key.end, names, rows, outputs)
            self._bootstrap_changed.add(bkey)
            if taken:
                return b, True
        if not b.announced:
            b.announced = True
            self.new_references[key.id] = b.profile
            self._bootstrap_changed.add(bkey)
        return b, False

    def take_bootstrap_changes(self) -> list[tuple[str, BootstrapState]]:
        """The bootstrap references changed since the last call, as ("namespace|model|node",
        state): what a worker writes to its changelog."""
        changed, self._bootstrap_changed = self._bootstrap_changed, set()
        return [(k, self._bootstraps[k].state()) for k in sorted(changed)]

    def restore_bootstrap(self, bkey: str, state: BootstrapState) -> None:
        """A bootstrap reference recovered from a changelog (a worker's restart)."""
        self._bootstraps[bkey] = BootstrapReference(self.bootstrap_seconds,
                                                    self.bootstrap_rows, state)

    def _estimator(self, model: str) -> CBPE | None:
        reference = self.config_for(model).reference
        scores = reference.scores if reference is not None else None
        if scores is None:
            return None
        est = self._cbpe.get(id(scores))
        if est is None:  # fitted once per reference: deterministic, so replay = worker
            est = self._cbpe[id(scores)] = CBPE().fit(scores.target, scores.probability,
                                                      scores.predicted)
        return est

    def _estimated(self, key: WindowKey, pairs: list[Pair]) -> dict[str, Any] | None:
        """CBPE of the window's binary outputs (see the module docstring)."""
        est = self._estimator(key.model)
        if est is None:
            return None
        cfg = self.config_for(key.model)
        proba, pred = binary_scores(pairs, cfg.classes, cfg.threshold)
        if not proba:
            return None
        metrics = est.estimate(proba, pred)
        return {"rows": len(proba), "calibrated": est.calibrated,
                "metrics": {m: e.as_dict() for m, e in metrics.items()}}

    def _drift(self, key: WindowKey, reference: ReferenceProfile, pairs: list[Pair],
               extras: bool = True) -> dict[str, Any]:
        """Drift and prediction drift of `pairs`; with `extras` (the whole window, not a
        segment), early warnings and the report frame too."""
        window = WindowDrift(reference, min_rows=self.drift_min_rows, cap=self.drift_cap,
                             seed=self.seed)
        warnings = None
        if self.early_warning and extras:
            from stream.drift.early import EarlyWarnings

            warnings = EarlyWarnings(self.early_warning, features=list(reference.features))
        # One batched update per distinct column naming (not one per request): the
        # per-call overhead of the numpy buffers dominated otherwise.
        batches: dict[tuple[str, ...] | None, list] = {}
        predictions: list[Any] = []
        with_predictions = reference.prediction is not None
        for p in pairs:
            rows = p.rows
            if rows:
                names = p.feature_names
                if not names or len(names) != len(rows[0]):
                    names = None
                batch = batches.get(names)
                if batch is None:
                    batch = batches[names] = []
                batch += rows
            outputs = p.outputs
            if outputs and with_predictions and p.error_type is None:
                if len(outputs) == 1:
                    predictions.append(prediction_value(outputs[0]))
                else:
                    predictions.extend(map(prediction_value, outputs))
        for names, rows in batches.items():
            window.update(names, rows)
            if warnings is not None:
                warnings.update(names or list(reference.features), block_means(rows))
        if predictions:
            window.update_predictions(predictions)
            if warnings is not None:
                warnings.update_predictions(
                    [r[0] for r in block_means([[v] for v in predictions])])
        drift, prediction_drift = window.get()
        out = {"drift": drift, "prediction_drift": prediction_drift}
        if extras and self.report_every and "dataset_drift" in drift:
            n = self._drift_windows.get(key.model, 0)
            self._drift_windows[key.model] = n + 1
            if n % self.report_every == 0:
                self.report_frames.append((key, reference, window.current_frame()))
        if warnings is not None:
            out["early_warnings"] = {k: bool(v) for k, v in sorted(warnings.get().items())}
        return out

    def _performance(self, key: WindowKey, predictions: int) -> dict[str, Any]:
        perf = self._perf.get(key.id)
        if perf is None:
            return {"labels": 0, "label_coverage": 0.0 if predictions else None}
        return perf.get(predictions=predictions)

    def on_emitted(self, key: WindowKey, summary: WindowSummary) -> None:
        self._emitted[key.id] = (key, summary)
        self._due.discard(key.id)

    def _labels_in(self, wid: str) -> int:
        perf = self._perf.get(wid)
        return len(perf) if perf is not None else 0

    def revisions(self, final: bool = False, watermark: float | None = None
                  ) -> list[tuple[WindowKey, WindowSummary]]:
        """Summaries of emitted windows that got new labels, with the next revision number.

        A window is revised once its labels grew by `revise_growth` (10 %, at least one)
        since it was last emitted — or, with `final`, whenever it has new labels. So is a
        window the `watermark` (int ns) has taken past the label horizon: `expire` forgets
        it next, and its last labels must not go unreported (replay's end of input, a
        worker's stream passing the horizon: the same last revision).
        """
        out = []
        last = float("-inf") if watermark is None else watermark - self.label_horizon_ns
        for wid in sorted(self._due):
            if wid not in self._emitted:
                continue
            key, summary = self._emitted[wid]
            before = summary.performance.get("labels") or 0
            if (not final and key.end >= last
                    and self._labels_in(wid) < before + max(1, before * self.revise_growth)):
                continue
            performance = self._performance(key, self._scored(summary.performance,
                                                              summary.predictions))
            estimated = (summary.performance or {}).get("estimated")
            if estimated is not None:
                performance["estimated"] = estimated
            changes: dict[str, Any] = {"performance": performance}
            if summary.segments:
                changes["segments"] = self._revised_segments(key, summary.segments,
                                                             performance.get("task"))
            revised = msgspec.structs.replace(summary, **changes, revision=summary.revision + 1)
            self._emitted[wid] = (key, revised)
            out.append((key, revised))
        self._due.difference_update(k.id for k, _ in out)
        return out

    def _revised_segments(self, key: WindowKey, segments: dict[str, dict[str, Any]],
                          task: str | None) -> dict[str, dict[str, Any]]:
        """The segments of an emitted summary with the performance of their labels now
        (the kept values of its first emission; later labels of others are `__other__`).
        A column no longer configured (segments turned off, or another column, before a
        restart) keeps what it had."""
        columns = self.segmenter.columns if self.segmenter is not None else ()
        out = {}
        for column, entries in segments.items():
            if column not in columns:
                out[column] = entries
                continue
            kept = {v for v in entries if v != OTHER}
            out[column] = {value: {**entry, "performance": self._segment_performance(
                key, column, value, kept, entry["predictions"], task)}
                for value, entry in entries.items()}
        return out

    @staticmethod
    def _scored(performance: dict[str, Any], predictions: int) -> int:
        """Output rows of the window's successful pairs, as its first emission counted
        them."""
        if performance.get("label_coverage") and performance.get("labels"):
            return round(performance["labels"] / performance["label_coverage"])
        return predictions

    def forget(self, window_ids: Iterable[str]) -> None:
        """Drop what is kept of these windows (their joined labels, emitted summaries): a
        worker's partition was revoked, or is about to be restored from its changelog,
        which holds them all (restoring on top of what was kept would count labels
        twice)."""
        for wid in window_ids:
            self._perf.pop(wid, None)
            self._seg_perf.pop(wid, None)
            self._emitted.pop(wid, None)
            self._due.discard(wid)

    def restore_emitted(self, key: WindowKey, summary: WindowSummary) -> None:
        """After a restart: an emitted window that may still be revised. (Restore its joined
        labels first: those it has beyond the summary's make it due, as they made it before
        the restart.)"""
        self._emitted[key.id] = (key, summary)
        if self._labels_in(key.id) > (summary.performance.get("labels") or 0):
            self._due.add(key.id)

    def expire(self, watermark: float) -> None:
        """Forget windows past the label horizon: no label can join them any more."""
        horizon = watermark - self.label_horizon_ns  # int ns
        for wid in [w for w, (k, _) in self._emitted.items() if k.end < horizon]:
            del self._emitted[wid]
            self._due.discard(wid)
            self._perf.pop(wid, None)
            self._seg_perf.pop(wid, None)
