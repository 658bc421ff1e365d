"""A reference from a model's own first traffic (stream/drift/bootstrap.py, Monitoring).

The oracle: the drift of a window compared with the bootstrap reference is what
`WindowDrift` (itself checked against Evidently in test_drift_oracle.py) gives for the
same window against `ReferenceProfile.from_frame` of the first windows' rows, built by
hand here from the generated data.
"""

from __future__ import annotations

import msgspec
import numpy as np
import orjson
import pandas as pd
import pytest

from stream.drift.bootstrap import BootstrapReference
from stream.drift.reference import ReferenceProfile
from stream.drift.window import WindowDrift
from stream.events import EventKind, ModelRef, PredictionEvent
from stream.eventtime import NS
from stream.monitoring import Monitoring
from stream.pipeline import Pipeline
from stream.state import BootstrapState, load

M = ModelRef("fraud", "prod", "clf", version="v1")
W = 60  # window seconds
NAMES = ("amount", "channel")


def _traffic(windows: int = 4, per_window: int = 50, shift_from: int = 3, seed: int = 0):
    """Per window: (request id, time ns, [amount, channel], score) of each request; the
    amounts move by +5 from window `shift_from` on."""
    rng = np.random.default_rng(seed)
    out = []
    for w in range(windows):
        reqs = []
        for i in range(per_window):
            amount = float(rng.normal(10.0 + (5.0 if w >= shift_from else 0.0)))
            channel = str(rng.choice(["web", "app", "pos"]))
            score = float(rng.uniform())
            t = (w * W + 1) * NS + i * (W - 2) * NS // per_window
            reqs.append((f"r{w}-{i}", t, [amount, channel], score))
        out.append(reqs)
    return out


def _run(traffic, monitoring: Monitoring, pipeline: Pipeline | None = None):
    p = pipeline or Pipeline(window_seconds=W, lateness=0, pairing_ttl=1, monitoring=monitoring)
    summaries = []
    for reqs in traffic:
        for rid, t, row, score in reqs:
            p.process(PredictionEvent(EventKind.REQUEST, rid, M, t, rows=[row],
                                      feature_names=NAMES))
            summaries += p.process(PredictionEvent(EventKind.RESPONSE, rid, M, t + NS // 100,
                                                   outputs=[[score]])).summaries
        summaries += p.advance().summaries
    return p, summaries


def _frame(reqs) -> pd.DataFrame:
    return pd.DataFrame({"amount": [r[2][0] for r in reqs], "channel": [r[2][1] for r in reqs],
                         "prediction": [r[3] for r in reqs]})


def _expected_drift(reference_reqs, window_reqs):
    profile = ReferenceProfile.from_frame(_frame(reference_reqs), features=list(NAMES),
                                          prediction="prediction")
    d = WindowDrift(profile)
    d.update(NAMES, [r[2] for r in window_reqs])
    d.update_predictions([r[3] for r in window_reqs])
    return d.get()


def test_the_first_windows_become_the_reference_and_the_next_are_compared_with_it():
    traffic = _traffic()
    p, summaries = _run(traffic, Monitoring(bootstrap_seconds=2 * W, bootstrap_rows=10_000))
    summaries += p.finish().summaries
    by_start = {s.window_start: s for _, s in summaries}
    assert len(by_start) == 4
    first, second, third, fourth = (by_start[k] for k in sorted(by_start))
    assert first.drift == {"status": "bootstrapping", "reference_rows": 50}
    assert second.drift == {"status": "bootstrapping", "reference_rows": 100}
    assert first.prediction_drift is None and not isinstance(first.reference, dict)
    reference_reqs = traffic[0] + traffic[1]
    for summary, reqs in ((third, traffic[2]), (fourth, traffic[3])):
        drift, prediction_drift = _expected_drift(reference_reqs, reqs)
        assert summary.drift == drift
        assert summary.prediction_drift == prediction_drift
        assert summary.reference == {"source": "bootstrap", "from": "1970-01-01T00:00:00Z",
                                     "to": "1970-01-01T00:02:00Z", "rows": 100}
    assert not third.drift["features"]["amount"]["drift"]
    assert fourth.drift["features"]["amount"]["drift"]  # the shift shows


def test_at_most_max_rows_the_window_that_fills_it_is_not_compared():
    traffic = _traffic(windows=3)
    mon = Monitoring(bootstrap_seconds=3600, bootstrap_rows=70)
    p, summaries = _run(traffic, mon)
    summaries += p.finish().summaries
    first, second, third = (s for _, s in sorted(summaries, key=lambda ks: ks[0].start))
    assert first.drift["status"] == second.drift["status"] == "bootstrapping"
    assert second.drift["reference_rows"] == 70
    drift, _ = _expected_drift(traffic[0] + traffic[1][:20], traffic[2])
    assert third.drift == drift and third.reference["rows"] == 70


def test_a_model_with_a_configured_reference_names_it_and_is_never_bootstrapped():
    from stream.monitoring import ModelConfig

    traffic = _traffic(windows=2)
    profile = ReferenceProfile.from_frame(_frame(traffic[0]), features=list(NAMES),
                                          prediction="prediction")
    mon = Monitoring({"fraud": ModelConfig(reference=profile)}, bootstrap_rows=10_000)
    p, summaries = _run(traffic, mon)
    summaries += p.finish().summaries
    assert [s.reference for _, s in summaries] == [{"source": "file", "rows": 50}] * 2
    assert mon.take_bootstrap_changes() == []


def test_without_bootstrap_a_model_without_reference_has_none():
    p, summaries = _run(_traffic(windows=1), Monitoring())
    summaries += p.finish().summaries
    [(_, s)] = summaries
    assert s.drift == {"status": "no_reference"}
    assert "reference" not in s.to_builtins()


def test_a_restored_state_continues_as_if_uninterrupted():
    """A worker's restart: the changelogged state (JSON) restores the same reference."""
    traffic = _traffic()
    whole = Monitoring(bootstrap_seconds=2 * W, bootstrap_rows=10_000)
    p, summaries = _run(traffic, whole)
    summaries += p.finish().summaries

    first = Monitoring(bootstrap_seconds=2 * W, bootstrap_rows=10_000)
    p1, before = _run(traffic[:2], first)
    before += p1.finish().summaries
    changes = first.take_bootstrap_changes()
    assert [k for k, _ in changes] == ["prod|fraud|clf"]
    stored = {k: orjson.loads(msgspec.json.encode(v)) for k, v in changes}
    second = Monitoring(bootstrap_seconds=2 * W, bootstrap_rows=10_000)
    for k, v in stored.items():
        second.restore_bootstrap(k, load(v, BootstrapState))
    p2, after = _run(traffic[2:], second)
    after += p2.finish().summaries
    assert [s for _, s in before + after] == [s for _, s in summaries]
    # the profile goes out once, with the first window compared
    assert list(whole.new_references) == [summaries[2][0].id]
    assert list(second.new_references) == [after[0][0].id]


def test_bad_parameters_raise():
    with pytest.raises(ValueError):
        BootstrapReference(seconds=0, max_rows=10)
    with pytest.raises(ValueError):
        BootstrapReference(seconds=10, max_rows=0)
    with pytest.raises(ValueError, match="not complete"):
        _ = BootstrapReference(seconds=10, max_rows=10).profile


def test_replay_logs_the_bootstrap_profile_to_the_first_compared_windows_mlflow_run(tmp_path):
    from mlflow import MlflowClient

    from agents.reference_cli import load_reference
    from agents.replay import SAMPLE, ReplayOptions, replay_files
    from agents.settings import Settings

    out = tmp_path / "out"
    settings = Settings(window_seconds=300.0, reference_bootstrap_seconds=600.0)
    replay_files([SAMPLE], settings, out, ReplayOptions(mlflow=True))
    windows = [orjson.loads(x) for x in (out / "windows.jsonl").read_bytes().splitlines()]
    compared = [s for s in windows if s.get("reference", {}).get("source") == "bootstrap"]
    assert len(compared) == 4  # the third window of each of the sample's four model nodes
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    for s in compared:
        exp = client.get_experiment_by_name(f"{s['model']}-production-monitoring")
        [run] = client.search_runs([exp.experiment_id],
                                   f"attributes.run_name = 'production-{s['window_end']}' "
                                   f"and tags.node = '{s['node']}'")
        path = client.download_artifacts(run.info.run_id, "reference.npz", str(tmp_path))
        profile = load_reference(path)
        assert {**profile.origin, "rows": profile.rows} == s["reference"]


def test_a_time_span_without_a_row_starts_over_instead_of_completing_empty():
    """A profile needs rows: failed requests without input rows make no reference."""
    b = BootstrapReference(seconds=W, max_rows=100)
    assert b.offer(0, W * NS, [], [], [])
    assert b.offer(5 * W * NS, 6 * W * NS, [("x",)], [[[1.0]]], [[0.5]])  # starts over
    assert not b.complete and b.start == 5 * W * NS
    assert not b.offer(6 * W * NS, 7 * W * NS, [], [], [])
    assert b.complete and b.profile.rows == 1
