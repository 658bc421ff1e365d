"""Sink health as Prometheus reads it: `predlog_sink_up` and `predlog_sink_retries_total`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sinks.prometheus import PrometheusSink


def _samples(sink: PrometheusSink) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(sink)
    text = generate_latest(registry).decode()
    return {(s.name, s.labels.get("sink", "")): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith("predlog_sink_")}


def test_sink_up_and_retries_follow_the_health():
    sink = PrometheusSink(lambda: 0.0)
    health = sink.sink_health
    health.register("elasticsearch")
    health.register("mlflow")
    assert _samples(sink) == {
        ("predlog_sink_up", "elasticsearch"): 1.0, ("predlog_sink_up", "mlflow"): 1.0,
        ("predlog_sink_retries_total", "elasticsearch"): 0.0,
        ("predlog_sink_retries_total", "mlflow"): 0.0}
    health.retrying("mlflow", ConnectionError("refused"))
    health.retrying("mlflow", ConnectionError("refused"))
    got = _samples(sink)
    assert got[("predlog_sink_up", "mlflow")] == 0.0
    assert got[("predlog_sink_retries_total", "mlflow")] == 2.0
    assert got[("predlog_sink_up", "elasticsearch")] == 1.0
    assert health.failing() == {"mlflow": "ConnectionError: refused"}
    health.ok("mlflow")
    got = _samples(sink)
    assert got[("predlog_sink_up", "mlflow")] == 1.0
    assert got[("predlog_sink_retries_total", "mlflow")] == 2.0
