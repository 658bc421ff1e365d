"""The worker's Prometheus collector on window summaries of every shape."""

from prometheus_client import CollectorRegistry, generate_latest

from sinks.prometheus import PrometheusSink
from stream.window_summary import WindowSummary


def test_a_window_with_too_few_rows_for_prediction_drift_still_exports():
    """`prediction_drift` is `{"status": "insufficient_data", ...}` for a small window (a
    short first window, or one cut short): /metrics failed on it with KeyError 'stattest'
    (found by the chaos harness), and Prometheus scraped nothing of that worker."""
    small = WindowSummary(
        model="m", version="v1", namespace="ns", node="n", window_start="2026-01-01T00:00:00Z",
        window_end="2026-01-01T00:05:00Z", requests=3, rows=3, predictions=3, errors=0,
        drift={"status": "insufficient_data", "rows": 3, "min_rows": 30},
        prediction_drift={"status": "insufficient_data", "rows": 3, "min_rows": 30})
    full = WindowSummary(
        model="m2", version="v1", namespace="ns", node="n", window_start="2026-01-01T00:00:00Z",
        window_end="2026-01-01T00:05:00Z", requests=40, rows=40, predictions=40, errors=0,
        prediction_drift={"stattest": "psi", "score": 0.25, "threshold": 0.1, "drift": True})
    sink = PrometheusSink(clock=lambda: 400.0)
    registry = CollectorRegistry()
    registry.register(sink)
    sink.add_summary(small, 300.0)
    sink.add_summary(full, 300.0)
    text = generate_latest(registry).decode()
    drift = [line for line in text.splitlines() if line.startswith("model_prediction_drift")]
    assert any('model_name="m2"' in line and line.endswith(" 0.25") for line in drift), drift
    assert not any('model_name="m"' in line for line in drift)
    assert 'model_name="m"' in text  # the small window's other series are there
