"""Evidently's own drift report for a window: reference (rebuilt from the profile, or
given) vs the window's sampled rows, as HTML. No I/O: writing it is a sink's job.

Evidently is imported only when a report is built (the import takes seconds). The
report is `evidently.Report([DataDriftPreset(columns=features, ...)])` with the
profile's column kinds as an explicit `DataDefinition` (without it Evidently would
infer kinds from the *current* window), its per-column test and threshold overrides,
and a `ValueDrift` on the prediction column when the profile has one.

`profile_frame(profile)` rebuilds a reference DataFrame Evidently gives the same
drift numbers for: each column holds its reference values (sorted, categories
expanded from their counts) padded with missing values to the longest column;
Evidently drops missing values per column before testing.

>>> import pandas as pd
>>> from stream.drift.reference import ReferenceProfile
>>> df = pd.DataFrame({"x": [2.0, None, 1.0], "c": ["b", "a", "b"]})
>>> p = ReferenceProfile.from_frame(df, categorical=["c"])
>>> profile_frame(p).to_dict("list")
{'x': [1.0, 2.0, nan], 'c': ['a', 'b', 'b']}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stream.drift.column import NUMERICAL, ReferenceColumn
from stream.drift.reference import ReferenceProfile


def _columns(profile: ReferenceProfile) -> list[ReferenceColumn]:
    cols = list(profile.features.values())
    return cols + ([profile.prediction] if profile.prediction is not None else [])


def profile_frame(profile: ReferenceProfile) -> pd.DataFrame:
    cols = _columns(profile)
    length = max((c.n for c in cols), default=0)
    out = {}
    for c in cols:
        pad = length - c.n
        if c.kind == NUMERICAL:
            out[c.name] = pd.Series(np.concatenate([c.numbers, np.full(pad, np.nan)]))
        else:
            values = [v for v, k in zip(c.category_names, c.category_counts.tolist(), strict=True)
                      for _ in range(k)]
            out[c.name] = pd.Series(values + [None] * pad, dtype=object)
    return pd.DataFrame(out)


def drift_report(profile: ReferenceProfile, current: pd.DataFrame,
                 reference: pd.DataFrame | None = None, drift_share: float = 0.5):
    """Run Evidently on `reference` (default: `profile_frame(profile)`) and `current`;
    returns Evidently's snapshot (`.get_html_str(as_iframe=False)`, `.dict()`)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    cols = _columns(profile)
    definition = DataDefinition(
        numerical_columns=[c.name for c in cols if c.kind == NUMERICAL],
        categorical_columns=[c.name for c in cols if c.kind != NUMERICAL])
    features = list(profile.features.values())
    metrics = [DataDriftPreset(
        columns=[c.name for c in features], drift_share=drift_share,
        per_column_method={c.name: c.stattest for c in features if c.stattest} or None,
        per_column_threshold={c.name: c.threshold for c in features
                              if c.threshold is not None} or None)]
    pred = profile.prediction
    if pred is not None and pred.name in current and current[pred.name].notna().any():
        metrics.append(ValueDrift(column=pred.name, method=pred.stattest,
                                  threshold=pred.threshold))
    ref = profile_frame(profile) if reference is None else reference
    names = [c.name for c in cols if c.name in current]
    return Report(metrics, include_tests=True).run(
        Dataset.from_pandas(current[names], data_definition=definition),
        Dataset.from_pandas(ref[names], data_definition=definition))


def drift_report_html(profile: ReferenceProfile, current: pd.DataFrame,
                      reference: pd.DataFrame | None = None, drift_share: float = 0.5) -> str:
    """The report as one self-contained HTML page."""
    return drift_report(profile, current, reference, drift_share).get_html_str(as_iframe=False)
