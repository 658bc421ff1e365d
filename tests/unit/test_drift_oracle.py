"""Drift per window against Evidently 0.7.23 itself, on the same reference and window rows:
test name, score (to 1e-9) and flag per feature, dataset drift, prediction drift."""

from __future__ import annotations

import warnings

import pytest

from stream.drift.column import CATEGORICAL, NUMERICAL
from stream.drift.reference import ReferenceProfile
from stream.drift.stattests import STATTESTS
from stream.drift.window import WindowDrift
from tests.fixtures.drift_data import FEATURES, evidently_drift, frame, rows

pytestmark = pytest.mark.filterwarnings("ignore")


def ours(ref, cur, prediction="pred", **overrides):
    profile = ReferenceProfile.from_frame(ref[[*FEATURES, prediction]], prediction=prediction,
                                          **overrides)
    w = WindowDrift(profile, cap=100_000)
    w.update(FEATURES, rows(cur, FEATURES))
    w.update_predictions(cur[prediction].tolist())
    drift, pred = w.get()
    return profile, drift, pred


def oracle(profile, ref, cur, **kw):
    num = [c.name for c in profile.features.values() if c.kind == NUMERICAL]
    cat = [c.name for c in profile.features.values() if c.kind == CATEGORICAL]
    p = profile.prediction
    (num if p.kind == NUMERICAL else cat).append(p.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evidently_drift(ref, cur, num, cat, prediction=p.name, **kw)


def assert_same(mine: dict, theirs: dict) -> None:
    assert mine["stattest"] == theirs["stattest"]
    assert mine["score"] == pytest.approx(theirs["score"], abs=1e-9, rel=1e-9, nan_ok=True)
    assert mine["threshold"] == theirs["threshold"]
    assert mine["drift"] == theirs["drift"]


def assert_dataset_same(mine: dict, theirs: dict) -> None:
    assert set(mine["features"]) == set(theirs["features"])
    for name, result in theirs["features"].items():
        assert_same(mine["features"][name], result), name
    for key in ("dataset_drift", "number_of_drifted_columns"):
        assert mine[key] == theirs[key], key
    assert mine["drift_share"] == pytest.approx(theirs["drift_share"], abs=1e-12)


@pytest.fixture(scope="module", params=[(500, 300), (3000, 800)], ids=["small-ref", "large-ref"])
def runs(request):
    n_ref, n_cur = request.param
    ref = frame(n_ref, 1, shifted=False)
    out = {}
    for name, cur in (("same", frame(n_cur, 2, shifted=False)),
                      ("shifted", frame(n_cur, 3, shifted=True))):
        for pred in ("pred", "score"):
            profile, drift, pdrift = ours(ref, cur, prediction=pred)
            out[name, pred] = (drift, pdrift, *oracle(profile, ref, cur))
    return n_ref, out


@pytest.mark.parametrize("case", ["same", "shifted"])
@pytest.mark.parametrize("pred", ["pred", "score"])
def test_default_tests_equal_evidently(runs, case, pred):
    n_ref, out = runs
    drift, pdrift, ev_drift, ev_pred = out[case, pred]
    assert_dataset_same(drift, ev_drift)
    assert_same(pdrift, ev_pred)
    expected = ({"ks", "chisquare", "z"} if n_ref <= 1000 else {"wasserstein", "jensenshannon"})
    assert {f["stattest"] for f in drift["features"].values()} == expected


def test_shifted_window_drifts_and_same_does_not(runs):
    _, out = runs
    assert out["shifted", "pred"][0]["dataset_drift"]
    assert not out["same", "pred"][0]["dataset_drift"]


def _applicable(profile, test):
    return {c.name: test for c in profile.features.values() if c.kind in STATTESTS[test].kinds}


@pytest.fixture(scope="module")
def override_runs():
    ref, cur = frame(600, 4, shifted=False), frame(400, 5, shifted=True)
    base = ReferenceProfile.from_frame(ref[[*FEATURES, "pred"]], prediction="pred")
    out = {}
    for test in STATTESTS:
        methods = _applicable(base, test)
        thresholds = {name: 0.2 for name in list(methods)[::2]}
        profile, drift, _ = ours(ref, cur, stattests=methods, thresholds=thresholds)
        out[test] = (drift, oracle(profile, ref, cur, methods=methods, thresholds=thresholds)[0])
    return out


@pytest.mark.parametrize("test", list(STATTESTS))
def test_each_stattest_override_equals_evidently(override_runs, test):
    drift, ev_drift = override_runs[test]
    assert_dataset_same(drift, ev_drift)
    assert any(f["stattest"] == test for f in drift["features"].values())
