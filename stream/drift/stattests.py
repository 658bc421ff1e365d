"""Evidently 0.7.23's drift tests on a reference summary and a window's values.

Each test takes a reference column (`ReferenceColumn`: sorted finite values for a
numerical column, category counts for a categorical one) and the window's values
already cleaned of NaN/None/inf (a float array, or a `{category: count}` dict), and
returns the score. The formulas are Evidently's (`evidently/legacy/calculations/
stattests/*.py`), with the same scipy calls:

- `ks`: `scipy.stats.ks_2samp(ref, cur)` p-value, drift if `p <= threshold` (0.05);
- `chisquare`: `scipy.stats.chisquare(f_obs, ref_counts * n_cur / n_ref)` p-value,
  drift if `p < threshold` (0.05);
- `z`: two-proportion z-test p-value (first sorted category vs the rest), drift if
  `p < threshold` (0.05); 1.0 when both sides hold the same single value;
- `wasserstein`: `wasserstein_distance(ref, cur) / max(std(ref), 0.001)`, drift if `>=` 0.1;
- `psi`, `kl_div`, `jensenshannon`: proportions per bin (Sturges bins over reference ∪
  current for numerical columns with more than 20 distinct reference values, else one
  bin per distinct value); psi and kl_div replace empty-bin proportions by
  `min_nonzero / 1e6` when `min_nonzero <= 1e-4`, else by `1e-4`; drift if `>=` 0.1.

>>> import numpy as np
>>> ref = ReferenceColumn.numerical("x", np.arange(100.0))
>>> round(wasserstein(ref, np.arange(100.0) + 10), 6)
0.346427
>>> STATTESTS["ks"].drifted(0.05), STATTESTS["chisquare"].drifted(0.05)
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from scipy import stats
from scipy.spatial import distance

from stream.drift.column import CATEGORICAL, NUMERICAL, ReferenceColumn

Current = np.ndarray | dict


def ks(ref: ReferenceColumn, cur: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov p-value (scipy's default method, two-sided).

    >>> round(ks(ReferenceColumn.numerical("x", range(50)), np.arange(50.0) + 25), 6)
    5e-06
    """
    return float(stats.ks_2samp(ref.values, cur)[1])


def wasserstein(ref: ReferenceColumn, cur: np.ndarray) -> float:
    """First Wasserstein distance normed by the reference's population std.

    The distance is scipy's `wasserstein_distance` algorithm (integral of |CDF_r - CDF_c|
    over the merged sorted values) on the already sorted reference; it equals scipy's
    result to rounding (checked against Evidently in the tests).

    >>> wasserstein(ReferenceColumn.numerical("x", [0, 2]), np.array([1.0, 3.0]))
    1.0
    """
    u = ref.numbers
    v = np.sort(cur)
    terms = _terms_by_runs(ref, v)
    if terms is None:
        merged = np.sort(np.concatenate([u, v]))
        u_counts = np.searchsorted(u, merged[:-1], "right")
        v_counts = np.searchsorted(v, merged[:-1], "right")
        deltas = np.diff(merged)
        u_cdf = u_counts / len(u)
        v_cdf = v_counts / len(v)
        terms = np.abs(u_cdf - v_cdf) * deltas
    return float(np.sum(terms) / max(ref.std, 0.001))


def _terms_by_runs(ref: ReferenceColumn, v: np.ndarray) -> np.ndarray | None:
    """``np.abs(u_cdf - v_cdf) * np.diff(merged)`` of the sorting formula (above), the
    same array element for element, built from the distinct values instead of sorting
    reference ∪ current: `merged` is the distinct values repeated by how often each
    occurs in both, so `diff(merged)` is 0.0 inside a run of equal values (a 0.0 term:
    the CDFs are finite) and the step to the next distinct value at a run's last
    position, where the CDFs are those of the run's value. Only those d - 1 terms are
    computed, into zeros of the full length, so `np.sum` adds the same array in the same
    order. O(distinct values + window) besides the zeros, against sorting and searching
    the whole reference per window. None with a -0.0 (a sort keeps the signs of zeros
    the distinct values would merge)."""
    cached = ref._cache.get("runs")
    if cached is None:
        u = ref.numbers
        cached = ref._cache["runs"] = (
            np.unique(u, return_counts=True) if not np.signbit(u[u == 0]).any() else ())
    if not cached or not len(cached[0]) or not len(v) or np.signbit(v[v == 0]).any():
        return None
    u_values, u_n = cached
    v_values, v_n = np.unique(v, return_counts=True)
    # The union of the sorted distinct values: the window's new ones inserted in place.
    at = np.searchsorted(u_values, v_values)
    new = (at == len(u_values)) | (u_values[np.minimum(at, len(u_values) - 1)] != v_values)
    values = np.insert(u_values, at[new], v_values[new]) if new.any() else u_values
    u_here = np.zeros(len(values), dtype=np.int64)
    from_ref = np.ones(len(values), dtype=bool)
    from_ref[at[new] + np.arange(int(new.sum()))] = False
    u_here[from_ref] = u_n
    v_here = np.zeros(len(values), dtype=np.int64)
    v_here[np.searchsorted(values, v_values)] = v_n
    ends = np.cumsum(u_here + v_here)[:-1] - 1  # each run's last position in `merged`
    u_cdf = np.cumsum(u_here)[:-1] / len(ref.numbers)
    v_cdf = np.cumsum(v_here)[:-1] / len(v)
    terms = np.zeros(len(ref.numbers) + len(v) - 1)
    terms[ends] = np.abs(u_cdf - v_cdf) * np.diff(values)
    return terms


def _keyed(ref: ReferenceColumn, cur: Current) -> tuple[list, np.ndarray, np.ndarray]:
    """Union of reference and current keys, with the counts of each side per key."""
    ref_counts = ref.value_counts()
    cur_counts = cur if isinstance(cur, dict) else _numeric_counts(cur)
    keys = list(ref_counts) + [k for k in cur_counts if k not in ref_counts]
    r = np.array([ref_counts.get(k, 0) for k in keys], dtype=np.float64)
    c = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.float64)
    return keys, r, c


def _numeric_counts(values: np.ndarray) -> dict:
    uniq, counts = np.unique(values, return_counts=True)
    return dict(zip(uniq.tolist(), counts.tolist(), strict=True))


def _n(cur: Current) -> int:
    return int(sum(cur.values())) if isinstance(cur, dict) else len(cur)


def chisquare(ref: ReferenceColumn, cur: Current) -> float:
    """Pearson chi-square p-value of current counts against reference-proportional ones.

    >>> ref = ReferenceColumn.categorical("c", {"a": 50, "b": 50})
    >>> round(chisquare(ref, {"a": 30, "b": 10}), 6)
    0.001565
    """
    _, r, c = _keyed(ref, cur)
    with np.errstate(divide="ignore", invalid="ignore"):  # a category new in the window
        return float(stats.chisquare(c, r * (_n(cur) / ref.n))[1])


def z(ref: ReferenceColumn, cur: Current) -> float:
    """Two-proportion z-test p-value: the smallest category against all others.

    >>> round(z(ReferenceColumn.categorical("c", {0: 60, 1: 40}), {0: 40, 1: 60}), 6)
    0.004678
    >>> z(ReferenceColumn.categorical("c", {"a": 5}), {"a": 3})
    1.0
    """
    keys, r, c = _keyed(ref, cur)
    if len(keys) == 1 or (np.count_nonzero(r) == 1 and np.count_nonzero(c) == 1
                          and np.array_equal(r > 0, c > 0)):
        return 1.0
    first = keys.index(sorted(keys)[0])
    n1, n2 = r.sum(), c.sum()
    p1 = float(n1 - r[first]) / n1
    p2 = float(n2 - c[first]) / n2
    p = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z_stat = (p1 - p2) / np.sqrt(p * (1 - p) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z_stat))))


def binned(ref: ReferenceColumn, cur: Current, fill_zeroes: bool) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current proportions per bin, as Evidently's `get_binned_data`."""
    if ref.kind == NUMERICAL and ref.n_unique > 20:
        cur = cast(np.ndarray, cur)  # a numerical column's current values
        edges = np.histogram_bin_edges(np.concatenate([ref.numbers, cur]), bins="sturges")
        r = np.histogram(ref.numbers, edges)[0] / ref.n
        c = np.histogram(cur, edges)[0] / len(cur)
    else:
        _, r, c = _keyed(ref, cur)
        r, c = r / ref.n, c / _n(cur)
    if fill_zeroes:
        r, c = _fill(r), _fill(c)
    return r, c


def _fill(p: np.ndarray) -> np.ndarray:
    low = p[p != 0].min()
    return np.where(p == 0, low / 10**6 if low <= 0.0001 else 0.0001, p)


def psi(ref: ReferenceColumn, cur: Current) -> float:
    """Population stability index over Evidently's bins.

    >>> round(psi(ReferenceColumn.categorical("c", {"a": 50, "b": 50}), {"a": 80, "b": 20}), 6)
    0.415888
    """
    r, c = binned(ref, cur, True)
    return float(np.sum((r - c) * np.log(r / c)))


def kl_div(ref: ReferenceColumn, cur: Current) -> float:
    """Kullback-Leibler divergence KL(reference || current) over Evidently's bins.

    >>> round(kl_div(ReferenceColumn.categorical("c", {"a": 50, "b": 50}), {"a": 80, "b": 20}), 6)
    0.223144
    """
    r, c = binned(ref, cur, True)
    return float(stats.entropy(r, c))


def jensenshannon(ref: ReferenceColumn, cur: Current) -> float:
    """Jensen-Shannon distance (natural log) over Evidently's bins, no zero fill.

    >>> ref = ReferenceColumn.numerical("x", np.linspace(0, 1, 100))
    >>> round(jensenshannon(ref, np.linspace(0.5, 1.5, 100)), 6)
    0.575544
    """
    r, c = binned(ref, cur, False)
    return float(distance.jensenshannon(r, c))


@dataclass(frozen=True)
class StatTest:
    """A drift test: its function, default threshold, allowed column kinds and direction."""

    name: str
    func: Callable[[ReferenceColumn, Any], float]  # (reference, Current of its kind)
    threshold: float
    kinds: tuple[str, ...]
    p_value: bool = False
    inclusive: bool = True

    def drifted(self, score: float, threshold: float | None = None) -> bool:
        t = self.threshold if threshold is None else threshold
        if self.p_value:
            return bool(score <= t) if self.inclusive else bool(score < t)
        return bool(score >= t)


BOTH = (NUMERICAL, CATEGORICAL)
STATTESTS: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest("ks", ks, 0.05, (NUMERICAL,), p_value=True),
        StatTest("chisquare", chisquare, 0.05, (CATEGORICAL,), p_value=True, inclusive=False),
        StatTest("z", z, 0.05, (CATEGORICAL,), p_value=True, inclusive=False),
        StatTest("wasserstein", wasserstein, 0.1, (NUMERICAL,)),
        StatTest("psi", psi, 0.1, BOTH),
        StatTest("kl_div", kl_div, 0.1, BOTH),
        StatTest("jensenshannon", jensenshannon, 0.1, BOTH),
    )
}
