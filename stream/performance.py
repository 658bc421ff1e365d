"""Window performance: accuracy-type metrics of the predictions that got a label.

scikit-learn's functions are the definitions; this module only decides what goes in.

Reading a logged output row (a response's output row, `Prediction.output`):
- k >= 2 numbers → the class is the argmax (ties → first column, as sklearn's
  ``predict`` does); if they are all in [0, 1] and sum to 1 ± 0.01 they are also the
  class probabilities (rows are divided by their sum: loggers round, and sklearn's
  multiclass AUC refuses rows that do not sum to 1). Column i's class is
  ``classes[i]`` when configured, else ``i`` when every output name is ``t:<i>``
  (Seldon's sklearn server), else the output name, else ``i``.
- one str/int/bool → the class itself. One float in [0, 1] → the probability of the
  positive class (``classes[1]``, default 1): class = positive if p > threshold
  (default 0.5, as sklearn's argmax of [1 − p, p]) else ``classes[0]``; probabilities
  [1 − p, p]. Another integral float → that int class. Anything else cannot be
  scored and is counted as ``unscored`` (the key appears only when non-zero).
- regression: one number → the predicted value.
Class values are normalized before comparing: integral floats and bools become ints,
and if strings and numbers meet, everything becomes str (so label "1" meets class 1).

Task: ``"classification"`` or ``"regression"`` from configuration, or from the
reference profile's target dtype (`task_from_dtype`: float → regression, anything
else → classification). ``"auto"`` (`infer_task`) looks at the window's rows:
classification if any output has >= 2 values, any output or label is a str/bool,
every output is an int, or every output is a float in [0, 1] with every label 0/1;
otherwise regression. Pin the task per model; auto may flip between tiny windows.

Metrics (all rows with a label and a scorable output):
- classification: accuracy, precision/recall/F1 weighted, F1 macro (sklearn's default
  label set = classes seen in y_true ∪ y_pred, ``zero_division=0`` = sklearn's
  default value without the warning); ``roc_auc``: binary → AUC of the positive
  class's probability; multiclass → one-vs-rest, weighted by support (sklearn has no
  multiclass default, weighted matches the seed's weighted F1), classes absent from
  the window weigh 0; ``log_loss`` with the probability columns' classes as labels.
  AUC and log loss need probabilities on every row and every label among the
  columns' classes. ``confusion_matrix``: ``{"classes": [...], "matrix": [[...]]}``,
  rows = true, columns = predicted, classes = configured/column classes, then the
  other seen values sorted.
- regression: mae, rmse, r2, mape (sklearn's; mape uses sklearn's epsilon for y = 0).
- Undefined values (AUC with one class, R² of one row, no probabilities) are None
  (JSON null); every key of the task is always present.
Plus ``labels`` (rows scored), ``label_coverage`` (joined rows / the window's
predictions, None when unknown or 0) and ``label_delay_seconds`` (p50, p95, max with
numpy's default linear quantiles of the int ns delays, in seconds: `np.percentile(d_ns, q)
/ 1e9`, as `stream.summary.latency_summary`; None when no label had a time). No labels →
``{"labels": 0, "label_coverage": ...}``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from stream import classifier_scores as cs
from stream.labels import JoinedLabel

TASKS = ("auto", "classification", "regression")
_SEQ = (list, tuple)
_T_NAME = re.compile(r"^t:(\d+)$")


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _flat(output: Any) -> list[Any]:
    while isinstance(output, _SEQ) and len(output) == 1 and isinstance(output[0], _SEQ):
        output = output[0]
    return list(output) if isinstance(output, _SEQ) else [output]


def _cls(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def task_from_dtype(dtype: Any) -> str:
    """The task a reference target column implies.

    >>> task_from_dtype(np.dtype("float64")), task_from_dtype(np.dtype("int64"))
    ('regression', 'classification')
    """
    return "regression" if getattr(np.dtype(dtype), "kind", "") == "f" else "classification"


def infer_task(outputs: Iterable[Any], labels: Iterable[Any]) -> str:
    """The ``task="auto"`` rule.

    >>> infer_task([[0.2, 0.8]], [1]), infer_task([[0.7]], [1]), infer_task([[3.5]], [2.0])
    ('classification', 'classification', 'regression')
    """
    outs = [_flat(o) for o in outputs]
    labels = list(labels)
    if any(len(o) >= 2 for o in outs):
        return "classification"
    scalars = [o[0] for o in outs if o]
    if any(isinstance(v, str | bool) for v in [*scalars, *labels]):
        return "classification"
    if scalars and all(isinstance(v, int) for v in scalars):
        return "classification"
    if scalars and all(_is_num(v) and 0 <= v <= 1 for v in scalars) and all(
        _is_num(v) and v in (0, 1) for v in labels
    ):
        return "classification"
    return "regression"


def column_classes(k: int, output_names: Sequence[str] | None, classes: Sequence | None) -> list:
    """The class of each probability column.

    >>> column_classes(3, ("t:0", "t:1", "t:2"), None), column_classes(2, ("no", "yes"), None)
    ([0, 1, 2], ['no', 'yes'])
    """
    if classes is not None and len(classes) == k:
        return list(classes)
    if output_names is not None and len(output_names) == k:
        matches = [m for n in output_names if (m := _T_NAME.match(n)) is not None]
        return [int(m.group(1)) for m in matches] if len(matches) == k else list(output_names)
    return list(range(k))


_COLUMNS: dict[tuple, list] = {}


def _column_classes(k: int, output_names: Sequence[str] | None, classes: Sequence | None
                    ) -> list:
    """`column_classes`, memoized (a window's rows share a few output namings)."""
    try:
        key = (k, output_names, None if classes is None else tuple(classes))
        cols = _COLUMNS.get(key)
    except TypeError:  # unhashable names or classes
        return column_classes(k, output_names, classes)
    if cols is None:
        if len(_COLUMNS) > 1024:
            _COLUMNS.clear()
        cols = _COLUMNS[key] = column_classes(k, output_names, classes)
    return cols


def read_class(output: Any, output_names: Sequence[str] | None = None,
               classes: Sequence | None = None, threshold: float = 0.5) -> tuple[Any, list | None]:
    """(predicted class, [(class, probability), ...] or None); ValueError if unscorable.

    >>> read_class([0.1, 0.7, 0.2], ("t:0", "t:1", "t:2"))
    (1, [(0, 0.1), (1, 0.7), (2, 0.2)])
    >>> read_class([0.3]), read_class(["setosa"]), read_class([2.0])
    ((0, [(0, 0.7), (1, 0.3)]), ('setosa', None), (2, None))
    """
    if type(output) is list and len(output) == 2:  # the common binary case, fast
        a, b = output
        if type(a) is float and type(b) is float and math.isfinite(a) and math.isfinite(b):
            cols = _column_classes(2, output_names, classes)
            total = float(sum(output))
            pred = cols[1] if b > a else cols[0]  # first max, as np.argmax
            if 0 <= a <= 1 and 0 <= b <= 1 and abs(total - 1) <= 0.01:
                return pred, [(cols[0], a / total), (cols[1], b / total)]
            return pred, None
    row = _flat(output)
    if len(row) >= 2:
        if not all(_is_num(v) and math.isfinite(v) for v in row):
            raise ValueError("output row is not numeric")
        cols = _column_classes(len(row), output_names, classes)
        pred = cols[max(range(len(row)), key=row.__getitem__)]  # first max, as np.argmax
        total = float(sum(row))
        if all(0 <= v <= 1 for v in row) and abs(total - 1) <= 0.01:
            return pred, [(c, v / total) for c, v in zip(cols, row, strict=True)]
        return pred, None
    if len(row) != 1:
        raise ValueError("empty output row")
    v = row[0]
    if isinstance(v, str | bool | int):
        return v, None
    if isinstance(v, float) and 0 <= v <= 1:
        neg, pos = (classes[0], classes[1]) if classes is not None and len(classes) == 2 else (0, 1)
        return (pos if v > threshold else neg), [(neg, 1 - v), (pos, v)]
    if isinstance(v, float) and v.is_integer():
        return int(v), None
    raise ValueError(f"cannot read a class from {v!r}")


def _f(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _order(first: Iterable[Any], seen: Iterable[Any]) -> list[Any]:
    out = list(dict.fromkeys(first))
    rest = set(seen) - set(out)
    try:
        return out + sorted(rest)
    except TypeError:
        return out + sorted(rest, key=lambda v: (type(v).__name__, str(v)))


def classification_metrics(y_true: Sequence, y_pred: Sequence, proba: Sequence | None = None,
                           classes: Sequence | None = None) -> dict[str, Any]:
    """Classifier metrics; `proba` rows are [(class, p), ...] (same classes on every row).

    >>> m = classification_metrics([0, 1, 1], [0, 1, 0])
    >>> round(m["accuracy"], 4), m["roc_auc"], m["confusion_matrix"]["matrix"]
    (0.6667, None, [[1, 0], [1, 1]])
    """
    y_true, y_pred = [_cls(v) for v in y_true], [_cls(v) for v in y_pred]
    cols = [_cls(c) for c, _ in proba[0]] if proba else []
    first = [_cls(c) for c in classes] if classes is not None else cols
    values = [*y_true, *y_pred, *first]
    if any(isinstance(v, str) for v in values) and not all(isinstance(v, str) for v in values):
        y_true, y_pred = [str(v) for v in y_true], [str(v) for v in y_pred]
        cols, first = [str(c) for c in cols], [str(c) for c in first]
    order = _order(first, [*y_true, *y_pred])
    fast = _numpy_metrics(y_true, y_pred, proba, cols, order)
    if fast is not None:
        return fast
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: dict[str, Any] = {
            "labels": len(y_true),
            "accuracy": _f(skm.accuracy_score(y_true, y_pred)),
            "precision_weighted": _f(skm.precision_score(y_true, y_pred, average="weighted",
                                                         zero_division=0)),
            "recall_weighted": _f(skm.recall_score(y_true, y_pred, average="weighted",
                                                   zero_division=0)),
            "f1_weighted": _f(skm.f1_score(y_true, y_pred, average="weighted", zero_division=0)),
            "f1_macro": _f(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "roc_auc": None,
            "log_loss": None,
        }
        if proba and len(cols) >= 2 and set(y_true) <= set(cols):
            out["roc_auc"], out["log_loss"] = _proba_metrics(y_true, proba, cols)
        matrix = skm.confusion_matrix(y_true, y_pred, labels=order)
    out["confusion_matrix"] = {"classes": [_py(c) for c in order], "matrix": matrix.tolist()}
    return out


def _same_kind(values: list) -> bool:
    """All ints (bools are ints by now) or all strs: sklearn's label handling is then
    plain sorting, which `stream.classifier_scores` reproduces."""
    kinds = {type(v) for v in values}
    return kinds == {int} or kinds == {str}


def _numpy_metrics(y_true: list, y_pred: list, proba: Sequence | None, cols: list,
                   order: list) -> dict[str, Any] | None:
    """`classification_metrics` without sklearn's per-call validation (same numbers, see
    `stream.classifier_scores`); None when the input needs sklearn's own handling."""
    if not y_true or not _same_kind([*y_true, *y_pred, *order, *cols]):
        return None
    labels = sorted(set(y_true) | set(y_pred))  # sklearn's unique_labels
    codes = {v: i for i, v in enumerate(labels)}
    for v in order:
        codes.setdefault(v, len(codes))
    true = np.array([codes[v] for v in y_true], dtype=np.intp)
    pred = np.array([codes[v] for v in y_pred], dtype=np.intp)
    out: dict[str, Any] = {"labels": len(y_true), "accuracy": _f(cs.accuracy(true, pred))}
    out.update({k: _f(v) for k, v in cs.prf_scores(true, pred, len(labels)).items()})
    out["roc_auc"], out["log_loss"] = None, None
    if proba and len(cols) >= 2 and set(y_true) <= set(cols):
        if len(set(cols)) != len(cols):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["roc_auc"], out["log_loss"] = _proba_metrics(y_true, proba, cols, fast=True)
    matrix = cs.confusion(true, pred, [codes[v] for v in order], len(codes))
    out["confusion_matrix"] = {"classes": [_py(c) for c in order], "matrix": matrix.tolist()}
    return out


def _proba_metrics(y_true: list, proba: Sequence, cols: list, fast: bool = False
                   ) -> tuple[float | None, float | None]:
    p = np.array([[v for _, v in row] for row in proba], dtype=float)
    try:
        idx = sorted(range(len(cols)), key=lambda i: cols[i])  # sklearn's column order
    except TypeError:
        return None, None
    p, labels = p[:, idx], [cols[i] for i in idx]
    if fast:  # numpy with sklearn's float operations (stream.classifier_scores)
        code = {c: i for i, c in enumerate(labels)}
        true = np.array([code[v] for v in y_true], dtype=np.intp)
    if len(labels) == 2:
        if fast:
            y = (true == 1).astype(int)
            auc_of = cs.binary_roc_auc
        else:
            y = np.array([v == labels[1] for v in y_true], dtype=int)
            auc_of = skm.roc_auc_score
        auc = auc_of(y, p[:, 1]) if 0 < y.sum() < len(y) else float("nan")
    else:
        try:
            auc = skm.roc_auc_score(y_true, p, multi_class="ovr", average="weighted",
                                    labels=labels)
        except ValueError:
            auc = float("nan")
    loss = cs.log_loss(true, p) if fast else skm.log_loss(y_true, p, labels=labels)
    return _f(auc), _f(loss)


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, Any]:
    """Regressor metrics.

    >>> regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])["mae"]
    0.3333333333333333
    """
    yt, yp = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "labels": len(yt),
            "mae": _f(skm.mean_absolute_error(yt, yp)),
            "rmse": _f(skm.root_mean_squared_error(yt, yp)),
            "r2": _f(skm.r2_score(yt, yp)) if len(yt) >= 2 else None,
            "mape": _f(skm.mean_absolute_percentage_error(yt, yp)),
        }


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


class WindowPerformance:
    """Collects a window's joined labels; `get` gives the summary's ``performance``.

    >>> from stream.decode.labels import Label
    >>> from stream.events import ModelRef
    >>> from stream.labels import Prediction
    >>> wp = WindowPerformance(task="classification")
    >>> for i, (out, y) in enumerate([([0.2, 0.8], 1), ([0.6, 0.4], 1), ([0.9, 0.1], 0)]):
    ...     wp.update(JoinedLabel(Prediction(f"r{i}", 0, ModelRef("m"), 0, "w", out),
    ...                           Label(f"r{i}", 0, y, 30 * 10**9 * (i + 1), "topic")))
    >>> p = wp.get(predictions=6)
    >>> p["labels"], round(p["accuracy"], 4), p["roc_auc"], p["label_coverage"]
    (3, 0.6667, 1.0, 0.5)
    >>> p["label_delay_seconds"]
    {'p50': 60.0, 'p95': 87.0, 'max': 90.0}
    """

    def __init__(self, task: str = "auto", classes: Sequence | None = None,
                 threshold: float = 0.5) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        self.task, self.classes, self.threshold = task, classes, threshold
        self._rows: list[tuple[Any, tuple[str, ...] | None, Any, float | None]] = []
        # (request id, row) of each of _rows: metrics read the rows in this order, not in
        # the order labels arrived (which differs between replay and workers, and float
        # sums such as log loss would differ in the last digit).
        self._keys: list[tuple[str, int]] = []
        # read_class of _rows[:len(_read)], kept across get() calls (revisions re-score
        # the whole window): (label, class, probabilities, their classes) or None.
        self._read: list[tuple[Any, Any, list | None, tuple | None] | None] = []

    def __len__(self) -> int:
        return len(self._rows)

    @classmethod
    def merged(cls, parts: Sequence[WindowPerformance]) -> WindowPerformance:
        """One collection of the labels of `parts` (same task, classes and threshold as the
        first): what a segment's `__other__` entry scores (`stream.segments`). The metrics
        read rows by (request id, row), so the order of the parts does not matter."""
        first = parts[0]
        out = cls(first.task, first.classes, first.threshold)
        for part in parts:
            out._rows += part._rows
            out._keys += part._keys
        return out

    def update(self, joined: JoinedLabel) -> None:
        p = joined.prediction
        self._rows.append((p.output, p.output_names, joined.label.value, joined.delay_ns))
        self._keys.append((p.request_id, p.row))

    def _order(self) -> list[int]:
        """Indices of _rows by (request id, row): the metrics' order, whatever the arrival."""
        keys = self._keys
        return sorted(range(len(keys)), key=keys.__getitem__)

    def get(self, predictions: int | None = None, task: str | None = None) -> dict[str, Any]:
        """The ``performance`` record; `task`: score as this task ("classification" or
        "regression"; e.g. a segment as its window), else as `self.task`."""
        coverage = len(self._rows) / predictions if predictions else None
        if not self._rows:
            return {"labels": 0, "label_coverage": coverage}
        task = task or self.task
        if task == "auto":
            task = infer_task([r[0] for r in self._rows], [r[2] for r in self._rows])
        out = self._classify() if task == "classification" else self._regress()
        out["task"] = task
        out["label_coverage"] = coverage
        delays = np.array([r[3] for r in self._rows if r[3] is not None], dtype=np.int64)
        out["label_delay_seconds"] = None if not len(delays) else {
            "p50": float(np.percentile(delays, 50) / 1e9),
            "p95": float(np.percentile(delays, 95) / 1e9), "max": float(delays.max() / 1e9)}
        return out

    def _classify(self) -> dict[str, Any]:
        read = self._read
        for output, names, label, _ in self._rows[len(read):]:
            try:
                pred, pr = read_class(output, names, self.classes, self.threshold)
            except ValueError:
                read.append(None)
                continue
            read.append((label, pred, pr, None if pr is None else tuple(c for c, _ in pr)))
        scored = [r for r in map(read.__getitem__, self._order()) if r is not None]
        unscored = len(read) - len(scored)
        if not scored:
            return {"labels": 0, "unscored": unscored}
        y_true = [r[0] for r in scored]
        y_pred = [r[1] for r in scored]
        proba = [r[2] for r in scored]
        first = scored[0][3]
        same = first is not None and all(r[3] == first for r in scored)
        out = classification_metrics(y_true, y_pred, proba if same else None, self.classes)
        return out | ({"unscored": unscored} if unscored else {})

    def _regress(self) -> dict[str, Any]:
        y_true, y_pred, unscored = [], [], 0
        for output, _, label, _ in map(self._rows.__getitem__, self._order()):
            row = _flat(output)
            if len(row) == 1 and _is_num(row[0]) and _is_num(label) and math.isfinite(row[0]):
                y_true.append(label)
                y_pred.append(row[0])
            else:
                unscored += 1
        if not y_true:
            return {"labels": 0, "unscored": unscored}
        return regression_metrics(y_true, y_pred) | ({"unscored": unscored} if unscored else {})
