"""Which test a column gets, and one column's drift result, as Evidently 0.7.23 decides.

Evidently's `_get_default_stattest` (legacy/calculations/stattests/registry.py), with
N = reference rows left after dropping NaN/±inf and n_values = distinct values of
reference ∪ current (both cleaned):

- N <= 1000: numerical with n_values > 5 → `ks`; otherwise `chisquare` if
  n_values > 2 else `z` (categorical columns always take this branch);
- N > 1000: numerical with n_values > 5 → `wasserstein`; otherwise `jensenshannon`.

A column's `stattest`/`threshold` override replaces the choice / the test's default
threshold (Evidently's `per_column_method` / `per_column_threshold`).

>>> from stream.drift.column import ReferenceColumn
>>> ref = ReferenceColumn.categorical("c", {"a": 50, "b": 50})
>>> d = column_drift(ref, {"a": 10, "b": 40})
>>> d["stattest"], round(d["score"], 6), d["threshold"], d["drift"]
('z', 0.000407, 0.05, True)
"""

from __future__ import annotations

import numpy as np

from stream.drift.column import NUMERICAL, ReferenceColumn
from stream.drift.stattests import STATTESTS, StatTest

SMALL_REFERENCE = 1000


def n_values(ref: ReferenceColumn, cur) -> int:
    """Distinct values of reference ∪ current (both already cleaned)."""
    if isinstance(cur, dict):
        counts = ref.value_counts()
        return len(counts) + sum(1 for k in cur if k not in counts)
    return len(np.union1d(ref.numbers, cur)) if len(cur) else ref.n_unique


def default_stattest(ref: ReferenceColumn, cur) -> StatTest:
    # The union has at least the reference's distinct values (cached): with more than
    # 5 (2) of those, n_values > 5 (2) without merging in the window's values.
    many = ref.n_unique > 5 or n_values(ref, cur) > 5
    numerical = ref.kind == NUMERICAL
    if ref.n <= SMALL_REFERENCE:
        if numerical and many:
            return STATTESTS["ks"]
        return STATTESTS["chisquare" if ref.n_unique > 2 or n_values(ref, cur) > 2
                         else "z"]
    return STATTESTS["wasserstein" if numerical and many else "jensenshannon"]


def resolve(ref: ReferenceColumn, cur) -> StatTest:
    if ref.stattest is None:
        return default_stattest(ref, cur)
    return STATTESTS[ref.stattest]


def column_drift(ref: ReferenceColumn, cur) -> dict:
    """`{"stattest", "score", "threshold", "drift"}` for a cleaned, non-empty window column."""
    test = resolve(ref, cur)
    threshold = test.threshold if ref.threshold is None else float(ref.threshold)
    score = test.func(ref, cur)
    return {"stattest": test.name, "score": score, "threshold": threshold,
            "drift": test.drifted(score, threshold)}
