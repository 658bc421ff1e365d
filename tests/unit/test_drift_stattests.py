"""Each stat against the scipy call Evidently makes, on random data with ties and tiny
samples (hypothesis), and the categorical cleaning rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stream.drift.column import ReferenceColumn, clean_categorical, clean_numerical
from stream.drift.stattests import ks, wasserstein

floats = st.lists(st.one_of(st.integers(-5, 5).map(float),
                            st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(floats, floats)
def test_wasserstein_equals_scipy(r, c):
    ref = ReferenceColumn.numerical("x", r)
    expected = stats.wasserstein_distance(r, c) / max(float(np.std(r)), 0.001)
    assert wasserstein(ref, np.array(c)) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(floats, floats)
def test_ks_equals_scipy(r, c):
    assert ks(ReferenceColumn.numerical("x", r), np.array(c)) == stats.ks_2samp(r, c)[1]


def test_cleaning():
    nan = float("nan")
    assert clean_categorical(["a", "a", None, nan, np.float64(2.0), 2, True, [1]]) == \
        {"a": 2, 2: 2, True: 1}
    assert clean_numerical([1, "x", None, nan, float("-inf"), True]).tolist() == [1.0, 1.0]


def _wasserstein_by_sorting(u: np.ndarray, v: np.ndarray) -> float:
    """The formula as first written (sort reference ∪ current): the fast path's oracle."""
    v = np.sort(v)
    merged = np.sort(np.concatenate([u, v]))
    deltas = np.diff(merged)
    u_cdf = np.searchsorted(u, merged[:-1], "right") / len(u)
    v_cdf = np.searchsorted(v, merged[:-1], "right") / len(v)
    return float(np.sum(np.abs(u_cdf - v_cdf) * deltas) / max(float(np.std(u)), 0.001))


@pytest.mark.parametrize("seed", range(8))
def test_wasserstein_distinct_value_path_is_bit_identical(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        levels = int(rng.integers(1, 400))
        grid = np.round(rng.normal(size=levels) * 10, int(rng.integers(0, 3)))
        ref = ReferenceColumn.numerical("x", rng.choice(grid, int(rng.integers(1, 5000))))
        cur = rng.choice(np.concatenate([grid, grid + 0.5]), int(rng.integers(1, 2000)))
        assert wasserstein(ref, cur) == _wasserstein_by_sorting(ref.values, cur)
    zeros = ReferenceColumn.numerical("z", [-0.0, 0.0, 1.0])
    assert wasserstein(zeros, np.array([0.0, -0.0])) == _wasserstein_by_sorting(
        zeros.values, np.array([0.0, -0.0]))


@pytest.mark.parametrize("seed", range(4))
def test_wasserstein_continuous_reference_is_bit_identical(seed):
    """Mostly distinct reference values (a probability column): the distinct-value path
    now serves these too, and must still add up the sorting formula's very terms."""
    rng = np.random.default_rng(seed)
    for _ in range(10):
        base = rng.random(int(rng.integers(1, 6000)))
        ref = ReferenceColumn.numerical("p", np.round(base, int(rng.integers(3, 17))))
        cur = np.concatenate([rng.choice(ref.values, int(rng.integers(0, 300))),
                              rng.random(int(rng.integers(1, 1500))) * 1.2 - 0.1])
        assert wasserstein(ref, cur) == _wasserstein_by_sorting(ref.values, cur)
    empty = ReferenceColumn.numerical("e", [float("nan")])
    with np.errstate(all="ignore"):  # an empty reference takes the sorting path, as before
        wasserstein(empty, np.array([1.0]))
