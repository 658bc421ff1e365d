"""Data and prediction drift of one window against a reference profile.

`WindowDrift` buffers the window's feature rows and prediction values (a uniform,
seeded reservoir sample of at most `cap` rows each, so memory is bounded) and on
`get()` runs Evidently 0.7.23's test per feature (see `stream.drift.selection`).

- `drift`: `{"dataset_drift", "drift_share", "number_of_drifted_columns", "features":
  {name: {"stattest", "score", "threshold", "drift"}}, "rows", "rows_seen", "sampled",
  "missing_features"}`. `rows` is how many rows were compared (the sample), `rows_seen`
  how many the window had; `sampled` is true when rows < rows_seen. Dataset drift is
  Evidently's DataDriftPreset rule: share of drifted features >= `drift_share` (0.5),
  over the features that have values in the window. `missing_features` lists profile
  features absent from the window or without one usable (non-NaN, finite) value
  (Evidently would refuse such a column); they count neither way.
- With fewer than `min_rows` rows seen (default 30), or no comparable feature:
  `{"status": "insufficient_data", "rows": n, "min_rows": m}`.
- `prediction_drift`: `{"stattest", "score", "threshold", "drift"}` on the successful
  outputs vs the profile's prediction column, the same insufficient-data status, or
  None when the profile has no prediction column.

>>> import numpy as np, pandas as pd
>>> from stream.drift.reference import ReferenceProfile
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
>>> w = WindowDrift(ReferenceProfile.from_frame(ref), min_rows=30)
>>> w.update(["b", "a", "extra"], [[x + 3, y, "?"] for x, y in rng.normal(size=(100, 2))])
>>> drift, prediction = w.get()
>>> drift["features"]["b"]["drift"], drift["features"]["a"]["drift"], drift["drift_share"]
(True, False, 0.5)
>>> drift["dataset_drift"], drift["rows_seen"], prediction
(True, 100, None)
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest

import numpy as np
import pandas as pd

from stream.drift.column import NUMERICAL, ReferenceColumn, to_float_array
from stream.drift.reference import ReferenceProfile
from stream.drift.reservoir import Reservoir
from stream.drift.selection import column_drift


class _Buffer:
    """One column's sampled values, grown on demand up to the reservoir's cap."""

    def __init__(self, numerical: bool):
        self.dtype = np.float64 if numerical else object
        self.data = np.empty(0, dtype=self.dtype)

    def write(self, dest: np.ndarray, values: np.ndarray, cap: int) -> None:
        need = int(dest.max()) + 1 if len(dest) else 0
        if need > len(self.data):
            grown = np.full(min(cap, max(need, 2 * len(self.data))),
                            np.nan if self.dtype is np.float64 else None, dtype=self.dtype)
            grown[: len(self.data)] = self.data
            self.data = grown
        self.data[dest] = values


def _column(values: tuple | None, n: int, numerical: bool) -> np.ndarray:
    if numerical:
        return np.full(n, np.nan) if values is None else to_float_array(values)
    out = np.empty(n, dtype=object)
    if values is not None:
        try:
            out[:] = values
        except ValueError:  # nested sequences: numpy would broadcast them
            for i, v in enumerate(values):
                out[i] = v
    return out


class WindowDrift:
    def __init__(self, profile: ReferenceProfile, min_rows: int = 30, cap: int = 50_000,
                 seed: int = 0, drift_share: float = 0.5):
        if not isinstance(profile, ReferenceProfile):
            raise ValueError("profile must be a ReferenceProfile")
        if not isinstance(min_rows, int) or min_rows < 1:
            raise ValueError(f"min_rows must be a positive int, got {min_rows!r}")
        if not 0 < drift_share <= 1:
            raise ValueError(f"drift_share must be in (0, 1], got {drift_share!r}")
        self.profile = profile
        self.min_rows = min_rows
        self.cap = cap
        self.seed = seed
        self.drift_share = drift_share
        self._rows = Reservoir(cap, seed)
        self._preds = Reservoir(cap, seed + 1)
        self._buffers = {n: _Buffer(c.kind == NUMERICAL) for n, c in profile.features.items()}
        pred = profile.prediction
        self._pred_buffer = _Buffer(pred is None or pred.kind == NUMERICAL)
        self._present: set[str] = set()

    def update(self, feature_names: Sequence[str] | None, rows: Sequence[Sequence]) -> None:
        """Add a batch of input rows; `feature_names` None means the profile's order."""
        if len(rows) == 0:
            return
        names = list(self.profile.features) if feature_names is None else list(feature_names)
        position: dict[str, int] = {}
        for i, n in enumerate(names):
            position.setdefault(str(n), i)
        dest, src = self._rows.place(len(rows))
        if not len(dest):
            return
        chosen = [rows[i] for i in src]
        columns = list(zip_longest(*chosen))  # transposed; short rows padded with None
        for name, col in self.profile.features.items():
            idx = position.get(name)
            if idx is not None:
                self._present.add(name)
            values = columns[idx] if idx is not None and idx < len(columns) else None
            self._buffers[name].write(dest, _column(values, len(chosen), col.kind == NUMERICAL),
                                      self.cap)

    def update_predictions(self, values: Sequence) -> None:
        """Add successful outputs, one per row (a one-element list counts as its element;
        longer rows count as missing)."""
        if len(values) == 0:
            return
        flat = [v[0] if isinstance(v, list | tuple) and len(v) == 1 else
                None if isinstance(v, list | tuple) else v for v in values]
        dest, src = self._preds.place(len(flat))
        pred = self.profile.prediction
        chosen = [flat[i] for i in src]
        if pred is None or pred.kind == NUMERICAL:
            arr = to_float_array(chosen)
        else:
            arr = np.empty(len(chosen), dtype=object)
            arr[:] = chosen
        self._pred_buffer.write(dest, arr, self.cap)

    def _insufficient(self, seen: int) -> dict:
        return {"status": "insufficient_data", "rows": seen, "min_rows": self.min_rows}

    def _drift(self, col: ReferenceColumn, values: np.ndarray) -> dict | None:
        cleaned = col.clean(values)
        return column_drift(col, cleaned) if col.n_current(cleaned) else None

    def get(self) -> tuple[dict, dict | None]:
        return self.feature_drift(), self.prediction_drift()

    def feature_drift(self) -> dict:
        seen, size = self._rows.seen, self._rows.size
        if seen < self.min_rows:
            return self._insufficient(seen)
        features, missing = {}, []
        for name, col in self.profile.features.items():
            result = None
            if name in self._present:
                result = self._drift(col, self._buffers[name].data[:size])
            if result is None:
                missing.append(name)
            else:
                features[name] = result
        if not features:
            return {**self._insufficient(seen), "missing_features": missing}
        drifted = sum(f["drift"] for f in features.values())
        share = drifted / len(features)
        return {"dataset_drift": bool(share >= self.drift_share), "drift_share": share,
                "number_of_drifted_columns": drifted, "features": features,
                "rows": size, "rows_seen": seen, "sampled": seen > size,
                "missing_features": missing}

    def prediction_drift(self) -> dict | None:
        pred = self.profile.prediction
        if pred is None:
            return None
        seen = self._preds.seen
        result = None
        if seen >= self.min_rows:
            result = self._drift(pred, self._pred_buffer.data[: self._preds.size])
        return result if result is not None else self._insufficient(seen)

    def current_frame(self) -> pd.DataFrame:
        """The sampled window as a DataFrame (features, and the prediction column if the
        profile has one), columns padded with missing values to one length."""
        cols = {n: self._buffers[n].data[: self._rows.size] for n in self.profile.features}
        if self.profile.prediction is not None:
            cols[self.profile.prediction.name] = self._pred_buffer.data[: self._preds.size]
        length = max((len(v) for v in cols.values()), default=0)
        out = {}
        for name, v in cols.items():
            pad = length - len(v)
            if v.dtype == object:
                out[name] = pd.Series(list(v) + [None] * pad, dtype=object)
            else:
                out[name] = pd.Series(np.concatenate([v, np.full(pad, np.nan)]))
        return pd.DataFrame(out)
