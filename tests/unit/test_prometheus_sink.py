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


def test_segments_are_the_window_families_with_segment_labels_in_both_sinks():
    """A summary with segments (issue 16 item 2): the live collector and the backfill file
    give each segment's drift and performance with `segment_column` and `segment`, and the
    window's own series without them (what `segment=""` in the rules selects)."""
    from prometheus_client.parser import text_string_to_metric_families

    from sinks.openmetrics_file import OpenMetricsFileSink

    drift = {"dataset_drift": True, "drift_share": 0.5, "number_of_drifted_columns": 1,
             "features": {"x": {"stattest": "ks", "score": 0.01, "threshold": 0.05,
                                "drift": True}}}
    summary = WindowSummary(
        model="m", version="v1", namespace="ns", node="n", window_start="2026-01-01T00:00:00Z",
        window_end="2026-01-01T00:05:00Z", requests=40, rows=40, predictions=40, errors=0,
        drift={**drift, "dataset_drift": False, "drift_share": 0.0},
        performance={"labels": 10, "accuracy": 0.9, "label_coverage": 0.25},
        segments={"region": {
            "north": {"requests": 30, "rows": 30, "predictions": 30, "errors": 0,
                      "drift": drift, "prediction_drift": None,
                      "performance": {"labels": 8, "accuracy": 0.75, "label_coverage": 0.3}},
            "__other__": {"requests": 10, "rows": 10, "predictions": 10, "errors": 0,
                          "drift": {"status": "insufficient_data", "rows": 10, "min_rows": 30},
                          "prediction_drift": None,
                          "performance": {"labels": 2, "accuracy": 1.0,
                                          "label_coverage": 0.2}}}})
    sink = PrometheusSink(clock=lambda: 400.0)
    registry = CollectorRegistry()
    registry.register(sink)
    sink.add_summary(summary, 300 * 10**9)
    live = {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(generate_latest(registry).decode())
            for s in f.samples}
    file = OpenMetricsFileSink()
    file.add_summary(summary)
    backfill = {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(file.render().replace("# EOF\n", ""))
                for s in f.samples}
    base = {"model_name": "m", "model_version": "v1", "namespace": "ns", "node": "n"}

    def key(name, **labels):
        return (name, tuple(sorted({**base, **labels}.items())))

    north = {"segment_column": "region", "segment": "north"}
    other = {"segment_column": "region", "segment": "__other__"}
    for got in (live, backfill):
        assert got[key("evidently_drift_share")] == 0.0
        assert got[key("evidently_drift_share", **north)] == 0.5
        assert got[key("evidently_dataset_drift", **north)] == 1.0
        assert got[key("evidently_feature_drift", **north, feature_name="x", stattest="ks")] \
            == 0.01
        assert key("evidently_drift_share", **other) not in got  # insufficient data
        assert got[key("model_performance", metric="accuracy")] == 0.9
        assert got[key("model_performance", metric="accuracy", **north)] == 0.75
        assert got[key("model_performance", metric="accuracy", **other)] == 1.0
        assert got[key("model_label_coverage", **other)] == 0.2
