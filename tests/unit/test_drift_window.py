"""WindowDrift behaviour (rows, names, sampling, insufficient data), a stream with a known
shift, river early warnings, and the Evidently HTML report."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from stream.drift.early import EarlyWarnings
from stream.drift.reference import ReferenceProfile
from stream.drift.report import drift_report, drift_report_html, profile_frame
from stream.drift.reservoir import Reservoir
from stream.drift.window import WindowDrift
from tests.fixtures.drift_data import FEATURES, evidently_names, frame, rows


@pytest.fixture(scope="module")
def profile():
    return ReferenceProfile.from_frame(frame(2000, 11, shifted=False)[[*FEATURES, "pred"]],
                                       prediction="pred")


def test_insufficient_data(profile):
    w = WindowDrift(profile, min_rows=30)
    w.update(FEATURES, rows(frame(29, 1, shifted=False), FEATURES))
    w.update_predictions([0] * 10)
    assert w.get() == ({"status": "insufficient_data", "rows": 29, "min_rows": 30},
                       {"status": "insufficient_data", "rows": 10, "min_rows": 30})


def test_names_order_extra_and_missing_columns(profile):
    cur = frame(300, 2, shifted=True)
    a = WindowDrift(profile)
    a.update(FEATURES, rows(cur, FEATURES))
    b = WindowDrift(profile)
    b.update(None, rows(cur, FEATURES))  # the profile's order
    shuffled = ["zzz", *FEATURES[::-1]]
    c = WindowDrift(profile)
    c.update(shuffled, [["junk", *r[::-1]] for r in rows(cur, FEATURES)])
    assert a.get() == b.get() == c.get()
    d = WindowDrift(profile)
    d.update(FEATURES[:-2], rows(cur, FEATURES[:-2]))
    drift, _ = d.get()
    assert drift["missing_features"] == FEATURES[-2:]
    assert set(drift["features"]) == set(FEATURES[:-2])
    assert drift["features"] == {k: v for k, v in a.get()[0]["features"].items()
                                 if k in FEATURES[:-2]}


def test_all_nan_feature_is_missing_and_short_rows_are_padded(profile):
    w = WindowDrift(profile, min_rows=1)
    w.update(["num", "num_shift"], [[None, 1.0], [float("nan"), 2.0], [float("inf")]] * 20)
    drift, _ = w.get()
    assert "num" in drift["missing_features"] and list(drift["features"]) == ["num_shift"]


def test_fast_numeric_path_equals_object_path():
    df = frame(500, 3, shifted=False)
    numeric = ["num", "num_shift", "num_mid", "count", "low_int", "bin"]
    p = ReferenceProfile.from_frame(df[numeric])
    cur = frame(200, 4, shifted=True)
    fast, slow = WindowDrift(p), WindowDrift(p)
    fast_rows = cur[numeric].to_numpy(dtype=float).tolist()
    slow_rows = [list(r) for r in fast_rows]
    fast_rows[5][0], slow_rows[5][0] = float("nan"), None  # None: not a plain-number batch
    fast.update(numeric, fast_rows)
    slow.update(numeric, slow_rows)
    assert fast.get() == slow.get()


def test_sampling_is_bounded_seeded_and_reported(profile):
    cur = frame(5000, 5, shifted=True)
    batches = [rows(cur, FEATURES)[i:i + 700] for i in range(0, 5000, 700)]
    results = []
    for _ in range(2):
        w = WindowDrift(profile, cap=1000, seed=7)
        for b in batches:
            w.update(FEATURES, b)
        results.append(w.get()[0])
    assert results[0] == results[1]
    r = results[0]
    assert (r["rows"], r["rows_seen"], r["sampled"]) == (1000, 5000, True)
    assert len(w.current_frame()) == 1000


def test_reservoir_is_uniform():
    hits = np.zeros(100)
    for seed in range(300):
        r = Reservoir(cap=10, seed=seed)
        slots = np.full(10, -1)
        for start in range(0, 100, 7):
            dest, src = r.place(min(7, 100 - start))
            slots[dest] = start + src
        hits[slots] += 1
    assert hits.sum() == 3000 and 10 < hits.min() and hits.max() < 60  # expected 30 each


@pytest.mark.parametrize("kwargs", [{"min_rows": 0}, {"cap": 0}, {"drift_share": 0},
                                    {"drift_share": 1.5}])
def test_bad_parameters(profile, kwargs):
    with pytest.raises(ValueError):
        WindowDrift(profile, **kwargs)
    with pytest.raises(ValueError):
        WindowDrift("not a profile")


def shifting_stream(seed=0, windows=6, shift_at=3, size=1000):
    rng = np.random.default_rng(seed)
    for i in range(windows):
        mu = 0.6 if i >= shift_at else 0.0
        x = rng.normal(mu, 1, (size, 3))
        x[:, 2] = rng.normal(0, 1, size)  # never shifts
        yield i, x.tolist()


def test_known_shift_is_flagged_in_the_first_window_after_it_and_not_before():
    ref = pd.DataFrame(np.random.default_rng(99).normal(0, 1, (5000, 3)), columns=list("abc"))
    profile = ReferenceProfile.from_frame(ref)
    early = EarlyWarnings("adwin", features=list("abc"))
    flags, warned = [], []
    for _, window in shifting_stream():
        w = WindowDrift(profile)
        w.update(list("abc"), window)
        early.update(list("abc"), window)
        drift, _ = w.get()
        flags.append((drift["features"]["a"]["drift"], drift["features"]["b"]["drift"],
                      drift["features"]["c"]["drift"], drift["dataset_drift"]))
        warned.append(early.get())
        early.reset()
    assert flags[:3] == [(False, False, False, False)] * 3
    assert flags[3] == (True, True, False, True)
    assert [w["a"] for w in warned] == [False, False, False, True, False, False]
    assert not any(w["c"] for w in warned)


def test_page_hinkley_and_predictions():
    early = EarlyWarnings("PageHinkley", threshold=20)
    early.update_predictions([[0.1]] * 200 + [[0.9]] * 200 + [[0.1, 0.2], "x", None])
    early.update(None, [[1.0, "s"]] * 10)
    assert early.get() == {"prediction": True, "f0": False}
    with pytest.raises(ValueError):
        EarlyWarnings("kswin")
    with pytest.raises(ValueError):
        EarlyWarnings("adwin", nope=1)


@pytest.fixture(scope="module")
def report_case(profile):
    cur = frame(400, 6, shifted=True)
    w = WindowDrift(profile)
    w.update(FEATURES, rows(cur, FEATURES))
    w.update_predictions(cur["pred"].tolist())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snap = drift_report(profile, w.current_frame())
        html = drift_report_html(profile, w.current_frame())
    return w.get(), snap.dict(), html


def test_report_on_the_profile_frame_gives_our_numbers(report_case):
    (drift, pred), snap, _ = report_case
    names = evidently_names()
    seen = set()
    for m in snap["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            ours = pred if cfg["column"] == "pred" else drift["features"][cfg["column"]]
            assert names[cfg["method"]] == ours["stattest"]
            assert m["value"] == pytest.approx(ours["score"], abs=1e-9, rel=1e-9)
            seen.add(cfg["column"])
        else:
            assert m["value"]["count"] == drift["number_of_drifted_columns"]
    assert seen == {*FEATURES, "pred"}


def test_report_html(report_case):
    html = report_case[2]
    assert html.lstrip().lower().startswith("<html") or "<html" in html[:500].lower()
    assert "num_shift" in html


def test_profile_frame_keeps_counts(profile):
    df = profile_frame(profile)
    assert df["cat"].value_counts().to_dict() == profile.features["cat"].value_counts()
    assert df["num"].notna().sum() == profile.features["num"].n


def test_report_sink_writes_html(tmp_path, profile):
    from sinks.evidently_report import EvidentlyReportSink

    cur = frame(100, 6, shifted=True)
    w = WindowDrift(profile)
    w.update(FEATURES, rows(cur, FEATURES))
    sink = EvidentlyReportSink(tmp_path / "reports")
    path = sink.add("seldon/iris 2026-11-01T00:05:00Z", profile, w.current_frame())
    assert not path.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sink.flush() == [path]
    assert path.read_text()[:2000].lower().count("<html") == 1 and sink.flush() == []


def test_odd_values_do_not_crash(profile):
    w = WindowDrift(profile, min_rows=1)
    w.update(["cat", "num"], np.array([["a", 1.0], ["b", 2.0]], dtype=object))
    w.update(["cat", "num"], [[["nested"], 3.0], [{"x": 1}, "4"]])
    w.update_predictions(np.array([0, 1, 1]))
    drift, pred = w.get()
    assert drift["rows_seen"] == 4 and drift["features"]["num"]["stattest"] == "wasserstein"
    assert pred["stattest"] == "jensenshannon"
