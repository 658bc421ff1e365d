"""The reference profile: what drift needs from a training dataset, compactly stored.

Built from a pandas DataFrame with column roles (features, optional prediction and
target) it keeps, per column, the sorted finite values (numerical) or the category
counts (categorical), NaN/inf counts, and per-column test/threshold overrides. It
serializes to one `.npz` (a JSON header plus one array per column, no pickle).

Column kinds follow Evidently 0.7.23's `infer_column_type` (core/datasets.py), applied
to the reference column: float → numerical; int → categorical when it has at most 10
distinct values, else numerical; bool/category → categorical; strings → categorical,
unless more than half the non-missing values are distinct (Evidently calls that text
and runs a text-content test: such columns are skipped here unless forced with
`categorical`); datetime and other dtypes are skipped. One deliberate difference:
unsigned ints are treated like ints (Evidently's `startswith("int")` leaves them
unknown). Evidently infers kinds from the *current* DataFrame when given raw frames;
predlog infers them once, from the reference, so a window cannot flip a column's kind.

>>> import pandas as pd
>>> df = pd.DataFrame({"x": [0.5, 1.5, None, 2.5] * 3, "n": [1, 2, 3, 1] * 3,
...                    "c": list("abab") * 3, "y": [0, 1, 0, 1] * 3})
>>> p = ReferenceProfile.from_frame(df, prediction="y", stattests={"x": "psi"})
>>> [(c.name, c.kind, c.n, c.missing) for c in p.features.values()]
[('x', 'numerical', 9, 3), ('n', 'categorical', 12, 0), ('c', 'categorical', 12, 0)]
>>> q = ReferenceProfile.from_bytes(p.to_bytes())
>>> q.features["x"].stattest, q.features["n"].categories, q.prediction.kind, q.rows
('psi', [1, 2, 3], 'categorical', 12)

With a `target` of 0/1 labels and a `probability` column (a binary classifier's
positive-class probability), the profile also keeps those rows' labels, probabilities
and predicted classes (`ReferenceScores`), which CBPE (`stream.cbpe`) is fitted on. The
predicted class is the `predicted` column when given, else probability > 0.5 (how
predlog reads a logged probability). Rows missing a label or probability are left out.

>>> s = ReferenceProfile.from_frame(df.assign(p=[0.2, 0.9, 0.4, 0.7] * 3), target="y",
...                                 probability="p").scores
>>> s.target[:4].tolist(), s.predicted[:4].tolist(), s.probability_column
([0, 1, 0, 1], [0, 1, 0, 1], 'p')
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stream.drift.column import CATEGORICAL, NUMERICAL, ReferenceColumn, category_key
from stream.drift.stattests import STATTESTS

FORMAT = "predlog.reference/1"
INTEGER_CARDINALITY_LIMIT = 10  # evidently.core.datasets.INTEGER_CARDINALITY_LIMIT


def infer_kind(s: pd.Series) -> str:
    """Evidently's inferred column type: numerical, categorical, text, datetime or unknown."""
    name = s.dtype.name
    if name.startswith("float"):
        return NUMERICAL
    if name.startswith("int") or name.startswith("uint"):
        return CATEGORICAL if s.nunique() <= INTEGER_CARDINALITY_LIMIT else NUMERICAL
    if name in ("string", "str", "object"):
        present = s.dropna()
        if len(present) == 0:
            return "unknown"
        if name == "object" and not (isinstance(present.iloc[0], str)
                                     and isinstance(present.iloc[-1], str)):
            return "unknown"
        return "text" if s.nunique() > s.count() * 0.5 else CATEGORICAL
    if name in ("bool", "category"):
        return CATEGORICAL
    return "datetime" if name.startswith("datetime") else "unknown"


def column_from_series(s: pd.Series, kind: str, stattest=None, threshold=None) -> ReferenceColumn:
    if stattest is not None:
        if stattest not in STATTESTS:
            raise ValueError(f"unknown stattest {stattest!r} for {s.name!r}; "
                             f"one of {', '.join(STATTESTS)}")
        if kind not in STATTESTS[stattest].kinds:
            raise ValueError(f"stattest {stattest!r} does not apply to {kind} column {s.name!r}")
    if threshold is not None and not (float(threshold) >= 0):
        raise ValueError(f"threshold for {s.name!r} must be a number >= 0, got {threshold!r}")
    kw = {"stattest": stattest, "threshold": None if threshold is None else float(threshold)}
    if kind == NUMERICAL:
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            raise ValueError(f"column {s.name!r} is not numeric ({s.dtype}), cannot be numerical")
        return ReferenceColumn.numerical(str(s.name), s.to_numpy(dtype=np.float64, na_value=np.nan),
                                         **kw)
    keys = [category_key(v) for v in s.tolist()]
    counts: dict = {}
    for k in keys:
        if k is not None:
            counts[k] = counts.get(k, 0) + 1
    try:
        counts = dict(sorted(counts.items()))
    except TypeError:
        pass
    return ReferenceColumn.categorical(str(s.name), counts, missing=keys.count(None), **kw)


@dataclass(frozen=True)
class ReferenceScores:
    """A binary classifier's reference rows: labels 0/1, positive-class probabilities and
    predicted classes 0/1 (what CBPE is fitted on)."""

    target: np.ndarray
    probability: np.ndarray
    predicted: np.ndarray
    probability_column: str = "probability"

    @classmethod
    def from_frame(cls, df: pd.DataFrame, target: str, probability: str,
                   predicted: str | None = None) -> ReferenceScores:
        cols = [target, probability] + ([predicted] if predicted is not None else [])
        rows = df[cols].dropna()
        y = rows[target].to_numpy()
        if not set(np.unique(y).tolist()) <= {0, 1}:
            raise ValueError(f"target {target!r} must hold 0/1 labels for a probability column")
        p = rows[probability].to_numpy(dtype=np.float64)
        if len(p) and (p.min() < 0 or p.max() > 1):
            raise ValueError(f"probability column {probability!r} has values outside [0, 1]")
        if predicted is not None:
            pred = rows[predicted].to_numpy()
            if not set(np.unique(pred).tolist()) <= {0, 1}:
                raise ValueError(f"predicted-class column {predicted!r} must hold 0/1")
        else:
            pred = p > 0.5
        return cls(y.astype(np.int8), p, np.asarray(pred).astype(np.int8), probability)


@dataclass
class ReferenceProfile:
    """Feature columns (in order), optional prediction and target columns, row count,
    the columns left out with the reason (`skipped`), and optional `scores` for CBPE."""

    features: dict[str, ReferenceColumn]
    prediction: ReferenceColumn | None = None
    target: ReferenceColumn | None = None
    rows: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    scores: ReferenceScores | None = None
    # Where the profile came from, as window summaries name it ("reference"): {"source":
    # "file"}, {"source": "mlflow", "run_id", "artifact"} or {"source": "bootstrap",
    # "from", "to"} (stream.drift.bootstrap).
    origin: dict[str, str] = field(default_factory=lambda: {"source": "file"})

    @classmethod
    def from_frame(
        cls, df: pd.DataFrame, features: Sequence[str] | None = None,
        prediction: str | None = None, target: str | None = None,
        categorical: Sequence[str] = (), numerical: Sequence[str] = (),
        stattests: Mapping[str, str] | None = None, thresholds: Mapping[str, float] | None = None,
        probability: str | None = None, predicted: str | None = None,
    ) -> ReferenceProfile:
        stattests, thresholds = dict(stattests or {}), dict(thresholds or {})
        both = set(categorical) & set(numerical)
        if both:
            raise ValueError(f"columns both categorical and numerical: {sorted(both)}")
        if (probability is not None or predicted is not None) and target is None:
            raise ValueError("a probability or predicted-class column needs the target column")
        if predicted is not None and probability is None:
            raise ValueError("a predicted-class column needs the probability column")
        roles = [c for c in (prediction, target, probability, predicted) if c is not None]
        if features is None:
            features = [c for c in df.columns if c not in roles]
        named = [*features, *roles, *categorical, *numerical, *stattests, *thresholds]
        unknown = sorted({str(c) for c in named} - {str(c) for c in df.columns})
        if unknown:
            raise ValueError(f"columns not in the reference data: {unknown}")
        if len(df) == 0:
            raise ValueError("the reference data has no rows")

        def column(name):
            kind = (CATEGORICAL if name in categorical else NUMERICAL if name in numerical
                    else infer_kind(df[name]))
            if kind not in (NUMERICAL, CATEGORICAL):
                return kind, None
            col = column_from_series(df[name], kind, stattests.get(name), thresholds.get(name))
            return kind, (col if col.n else None)

        out, skipped = {}, {}
        for name in features:
            kind, col = column(name)
            if col is None:
                skipped[str(name)] = kind if kind not in (NUMERICAL, CATEGORICAL) else "empty"
            else:
                out[str(name)] = col
        pred = column(prediction)[1] if prediction is not None else None
        targ = column(target)[1] if target is not None else None
        if probability is not None and target is None:
            raise ValueError("a probability column needs the target column (for CBPE)")
        scores = (ReferenceScores.from_frame(df, target, probability, predicted)
                  if probability is not None and target is not None else None)
        return cls(out, pred, targ, len(df), skipped, scores)

    def to_bytes(self) -> bytes:
        arrays: dict[str, Any] = {}  # (np.savez_compressed's **kwds)
        header: dict[str, Any] = {"format": FORMAT, "rows": self.rows, "skipped": self.skipped,
                                  "origin": self.origin}
        for role, cols in (("features", list(self.features.values())),
                           ("prediction", [self.prediction]), ("target", [self.target])):
            metas: list[dict[str, Any] | None] = []
            for i, c in enumerate(cols):
                if c is None:
                    metas.append(None)
                    continue
                meta = {"name": c.name, "kind": c.kind, "missing": c.missing,
                        "infinite": c.infinite, "stattest": c.stattest, "threshold": c.threshold}
                if c.kind == NUMERICAL:
                    arrays[f"{role}/{i}/values"] = c.numbers
                else:
                    meta["categories"] = c.categories
                    arrays[f"{role}/{i}/counts"] = c.category_counts
                metas.append(meta)
            header[role] = metas if role == "features" else metas[0]
        if self.scores is not None:
            header["scores"] = {"probability_column": self.scores.probability_column}
            arrays["scores/target"] = self.scores.target
            arrays["scores/probability"] = self.scores.probability
            arrays["scores/predicted"] = self.scores.predicted
        buf = io.BytesIO()
        np.savez_compressed(buf, header=np.array(json.dumps(header, default=str)), **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            header = json.loads(str(npz["header"]))
            if header.get("format") != FORMAT:
                raise ValueError(f"not a predlog reference profile: {header.get('format')!r}")

            def col(role, i, meta):
                if meta is None:
                    return None
                kw = {k: meta[k] for k in ("missing", "infinite", "stattest", "threshold")}
                if meta["kind"] == NUMERICAL:
                    return ReferenceColumn(meta["name"], NUMERICAL,
                                           values=npz[f"{role}/{i}/values"], **kw)
                return ReferenceColumn(meta["name"], CATEGORICAL, categories=meta["categories"],
                                       counts=npz[f"{role}/{i}/counts"], **kw)

            feats = [col("features", i, m) for i, m in enumerate(header["features"])]
            scores = None
            if header.get("scores") is not None:
                scores = ReferenceScores(npz["scores/target"], npz["scores/probability"],
                                         npz["scores/predicted"],
                                         header["scores"]["probability_column"])
            return cls({c.name: c for c in feats}, col("prediction", 0, header["prediction"]),
                       col("target", 0, header["target"]), header["rows"], header["skipped"],
                       scores, header.get("origin") or {"source": "file"})
