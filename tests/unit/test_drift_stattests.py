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
