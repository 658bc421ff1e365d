"""The demo end to end (in-process, no servers): summer drift and an accuracy drop show."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sklearn")

from agents.demo import run_demo  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"), fraction=0.05, reports=8)


def _latest(out):
    latest = {}
    for line in (out / "windows.jsonl").read_text().splitlines():
        s = json.loads(line)
        latest[s["window_start"]] = s
    return latest


def test_summer_drift_and_accuracy_drop(demo):
    latest = _latest(demo.out)

    def months(prefixes, what):
        return [what(s) for start, s in latest.items() if start[:7] in prefixes]

    def temp_drift(s):
        return s["drift"]["features"]["temp"]["drift"] if "features" in s["drift"] else None

    assert not any(months(("2013-01", "2013-02"), temp_drift))
    assert all(months(("2013-07",), temp_drift))

    def acc(prefixes):
        labels = sum(months(prefixes, lambda s: s["performance"]["labels"]))
        correct = sum(months(prefixes, lambda s: s["performance"]["labels"]
                             * (s["performance"]["accuracy"] or 0)))
        return correct / labels

    assert acc(("2013-06", "2013-07")) < acc(("2013-01", "2013-02")) - 0.04


def test_outputs_and_the_seed_comparison(demo):
    assert demo.replay.dead_letters == {}
    assert demo.replay.labels > 0 and demo.replay.revisions > 0
    assert demo.comparison["status"] == "ok" and demo.comparison["degradation"] > 0
    assert demo.replay.reports and all(p.stat().st_size > 10_000 for p in demo.replay.reports)
    for name in ("windows.jsonl", "predictions.jsonl", "metrics.prom", "mlflow.db"):
        assert (demo.out / name).stat().st_size > 0
    page = demo.replay.overview.read_text()  # the year at a glance links every report
    assert all(f'href="reports/{p.name}"' in page for p in demo.replay.reports)


def test_every_window_carries_a_cbpe_estimate_and_the_lead_is_measured(demo):
    latest = _latest(demo.out)
    estimates = [s["performance"]["estimated"] for s in latest.values()]
    assert all(e["rows"] > 0 and e["metrics"]["accuracy"]["value"] is not None
               for e in estimates)
    # January-February: the model's own months, no concept shift: estimate ≈ realized
    winter = [s for start, s in latest.items() if start[:7] in ("2013-01", "2013-02")]
    est = sum(s["performance"]["estimated"]["metrics"]["accuracy"]["value"]
              * s["performance"]["estimated"]["rows"] for s in winter) / sum(
        s["performance"]["estimated"]["rows"] for s in winter)
    real = sum(s["performance"]["accuracy"] * s["performance"]["labels"] for s in winter) / sum(
        s["performance"]["labels"] for s in winter)
    assert abs(est - real) < 0.03
    assert demo.lead is not None and demo.lead.threshold is not None
