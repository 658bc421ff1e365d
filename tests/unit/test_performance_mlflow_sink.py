"""MLflow sink against local stores (SQLite, file): runs per window, revisions, degradation."""

from __future__ import annotations

import os
import uuid

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
)

from sinks.mlflow_sink import MlflowSink, is_permanent, is_transient, window_id, window_metrics
from stream.eventtime import format_utc
from stream.eventtime import seconds_to_ns as ns
from stream.window_summary import WindowSummary

T0 = 1_793_491_200.0  # 2026-11-01T00:00:00Z


def summary(model: str, start: float, accuracy: float | None, revision: int = 0, **extra):
    perf = {"labels": 0, "label_coverage": 0.0} if accuracy is None else {
        "labels": 40, "accuracy": accuracy, "precision_weighted": accuracy,
        "recall_weighted": accuracy, "f1_weighted": accuracy - 0.01, "f1_macro": accuracy - 0.02,
        "roc_auc": None, "log_loss": 0.31, "task": "classification", "label_coverage": 0.4,
        "label_delay_seconds": {"p50": 30.0, "p95": 90.0, "max": 120.0},
        "confusion_matrix": {"classes": [0, 1], "matrix": [[10, 2], [3, 25]]}}
    s = {
        "model": model, "version": "1.17.1", "namespace": "seldon",
        "window_start": format_utc(ns(start)), "window_end": format_utc(ns(start + 300)),
        "requests": 100, "rows": 120, "predictions": 118, "errors": 2,
        "error_types": {"http_500": 2}, "unpaired_requests": 1,
        "latency_seconds": {"p50": 0.01, "p95": 0.05, "p99": 0.09, "mean": 0.02, "max": 0.1},
        "drift": {"dataset_drift": True, "drift_share": 0.5, "number_of_drifted_columns": 2,
                  "features": {}},
        "prediction_drift": {"stattest": "ks", "score": 0.2, "threshold": 0.05, "drift": False},
        "performance": perf,
    }
    if revision:
        s["revision"] = revision
    return WindowSummary.from_builtins(s | extra)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlflow")
    return d, f"sqlite:///{d}/mlflow.db"


def _model() -> str:
    return f"iris-{uuid.uuid4().hex[:8]}"


def _runs(client: MlflowClient, model: str):
    exp = client.get_experiment_by_name(f"{model}-production-monitoring")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def test_one_run_per_window_revised_in_place(store, tmp_path):
    root, uri = store
    model = _model()
    report = tmp_path / "evidently-report.html"
    report.write_text("<html>drift</html>")
    sink = MlflowSink(uri, clock=lambda: T0 + 3600)
    sink.add(summary(model, T0, 0.9), report_html_path=str(report))
    sink.add(summary(model, T0 + 300, 0.8))
    assert sink.flush() == 2
    assert sink.flush() == 0
    sink.add(summary(model, T0, 0.85, revision=1), report_html_path=str(report))
    assert sink.flush() == 1
    # a replay from scratch (a new sink, no caches) writes every version again
    replay = MlflowSink(uri, clock=lambda: T0 + 7200)
    for s in (summary(model, T0, 0.9), summary(model, T0 + 300, 0.8),
              summary(model, T0, 0.85, revision=1)):
        replay.add(s)
    replay.flush()

    client = MlflowClient(tracking_uri=uri)
    runs = _runs(client, model)
    assert len(runs) == 2
    first, second = runs
    assert first.info.run_name == "production-2026-11-01T00:05:00Z"
    assert (first.info.start_time, first.info.end_time) == (T0 * 1000, (T0 + 300) * 1000)
    assert first.info.status == "FINISHED"
    assert first.data.metrics["production_accuracy"] == 0.85
    assert first.data.metrics["production_f1"] == pytest.approx(0.84)
    assert second.data.metrics["production_accuracy"] == 0.8
    tags = first.data.tags
    assert {k: tags[k] for k in ("environment", "model_name", "model_version", "namespace",
                                 "window_start", "window_end", "predlog.window_id",
                                 "predlog.revision")} == {
        "environment": "production", "model_name": model, "model_version": "1.17.1",
        "namespace": "seldon", "window_start": "2026-11-01T00:00:00Z",
        "window_end": "2026-11-01T00:05:00Z",
        "predlog.window_id": f"seldon|{model}|1.17.1||1793491200",
        "predlog.revision": "1"}
    assert second.data.tags["predlog.revision"] == "0"
    history = client.get_metric_history(first.info.run_id, "production_accuracy")
    assert sorted({(m.step, m.value) for m in history}) == [(0, 0.9), (1, 0.85)]
    m = first.data.metrics
    assert (m["batch_size"], m["dataset_drift"], m["drift_share"],
            m["number_of_drifted_columns"], m["latency_p99"]) == (118, 1, 0.5, 2, 0.09)
    assert "production_roc_auc" not in m  # None is not logged
    assert [a.path for a in client.list_artifacts(first.info.run_id)] == ["drift_report.html"]
    assert client.list_artifacts(second.info.run_id) == []
    stored = [f for _, _, files in os.walk(root / "mlartifacts") for f in files]
    assert "drift_report.html" in stored


def test_compare_with_training(store):
    _, uri = store
    model = _model()
    sink = MlflowSink(uri, clock=lambda: T0 + 86400)
    assert sink.compare_with_training(model) == {"status": "no_training_experiment"}
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(f"{model}-training")
    assert sink.compare_with_training(model) == {"status": "no_training_runs"}
    old = client.create_run(exp, start_time=int(T0 * 1000) - 10_000)
    client.log_metric(old.info.run_id, "test_accuracy", 0.99)
    newer = client.create_run(exp, start_time=int(T0 * 1000))
    assert sink.compare_with_training(model)["status"] == "no_training_accuracy"
    client.log_metric(newer.info.run_id, "test_accuracy", 0.95)
    assert sink.compare_with_training(model) == {"status": "no_production_data"}
    sink.add(summary(model, T0 - 30 * 86400, 0.1))  # older than days_back: not counted
    sink.add(summary(model, T0, None))  # no labels: left out of the average
    sink.flush()
    assert sink.compare_with_training(model) == {"status": "no_labelled_windows",
                                                 "production_runs": 1}
    sink.add(summary(model, T0 + 300, 0.9))
    sink.add(summary(model, T0 + 600, 0.8))
    sink.flush()
    got = sink.compare_with_training(model)
    assert got == {
        "status": "ok", "training_accuracy": 0.95, "avg_production_accuracy": pytest.approx(0.85),
        "degradation": pytest.approx(0.1), "degradation_percentage": pytest.approx(10 / 0.95),
        "samples_evaluated": 2, "degraded": True, "training_run_id": newer.info.run_id}
    assert sink.compare_with_training(model, days_back=60)["samples_evaluated"] == 3


class Flaky:
    """A client whose log_batch fails `failures` times with `exc`, then works."""

    def __init__(self, client, failures, exc):
        self._client, self.failures, self.exc, self.calls = client, failures, exc, 0

    def log_batch(self, *a, **kw):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return self._client.log_batch(*a, **kw)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_flush_retries_connection_errors(store):
    _, uri = store
    model = _model()
    refused = MlflowException("API request failed")
    refused.__context__ = requests.ConnectionError("Connection refused")
    flaky = Flaky(MlflowClient(tracking_uri=uri), 2, refused)
    sink = MlflowSink(uri, client=flaky, backoff_seconds=0)
    sink.add(summary(model, T0, 0.9))
    assert sink.flush() == 1 and flaky.calls == 3
    assert len(_runs(MlflowClient(tracking_uri=uri), model)) == 1


def test_flush_retries_a_long_outage_until_it_passes_and_reports_each_retry(store):
    """MLflow down for longer than any fixed number of attempts: the flush blocks (the
    worker's backpressure) instead of raising into the stage, and tells `on_retry`."""
    _, uri = store
    model = _model()
    refused = MlflowException("API request failed")
    refused.__context__ = requests.ConnectionError("Connection refused")
    flaky = Flaky(MlflowClient(tracking_uri=uri), 12, refused)
    retries = []
    sink = MlflowSink(uri, client=flaky, backoff_seconds=0, on_retry=retries.append)
    sink.add(summary(model, T0, 0.9))
    assert sink.flush() == 1 and flaky.calls == 13
    assert retries == [refused] * 12
    assert sink.take_rejected() == []
    assert len(_runs(MlflowClient(tracking_uri=uri), model)) == 1


def test_a_window_mlflow_refuses_for_good_is_set_aside_not_raised(store):
    """A 4xx is not retried and does not block the windows behind it: it is rejected, for
    the driver to dead-letter."""
    _, uri = store
    model = _model()
    bad = MlflowException("bad", error_code=INVALID_PARAMETER_VALUE)
    flaky = Flaky(MlflowClient(tracking_uri=uri), 1, bad)
    sink = MlflowSink(uri, client=flaky, backoff_seconds=0)
    first, second = summary(model, T0, 0.9), summary(model, T0 + 300, 0.8)
    sink.add(first)
    sink.add(second)
    assert sink.flush() == 1  # the second window was written
    assert flaky.calls == 2  # the refused one was not retried
    assert len(sink) == 0
    [(rejected, exc)] = sink.take_rejected()
    assert rejected == first and exc is bad
    assert sink.take_rejected() == []
    # (the refused window's run was created before its metrics were refused: it stays empty)
    assert [r.data.metrics.get("production_accuracy")
            for r in _runs(MlflowClient(tracking_uri=uri), model)] == [None, 0.8]

    missing = MlflowSink(uri, backoff_seconds=0)  # not MLflow's error: a lost report file
    missing.add(summary(model, T0 + 600, 0.7), "/nonexistent/report.html")
    assert missing.flush() == 0
    [(_, exc)] = missing.take_rejected()
    assert isinstance(exc, FileNotFoundError)


def test_with_attempts_set_it_raises_and_keeps_the_buffer(store):
    _, uri = store
    model = _model()
    down = MlflowSink(uri, client=Flaky(MlflowClient(tracking_uri=uri), 99,
                                        ConnectionError("down")),
                      attempts=3, backoff_seconds=0)
    down.add(summary(model, T0 + 300, 0.9))
    with pytest.raises(ConnectionError):
        down.flush()
    assert down.client.calls == 3
    assert len(down) == 1  # kept for the next flush


def test_file_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    sink = MlflowSink(uri)
    sink.add(summary("iris", T0, 0.9))
    sink.add(summary("iris", T0, 0.7, revision=2))
    sink.flush()
    runs = _runs(MlflowClient(tracking_uri=uri), "iris")
    assert len(runs) == 1
    assert runs[0].data.metrics["production_accuracy"] == 0.7
    assert runs[0].data.tags["predlog.revision"] == "2"


def test_window_metrics_and_ids():
    s = summary("m", T0, None, node="classifier",
                drift={"status": "insufficient_data", "rows": 3},
                prediction_drift={"stattest": "ks", "score": float("nan"), "drift": True})
    m = window_metrics(s)
    assert "dataset_drift" not in m and "production_accuracy" not in m
    assert m["prediction_drift"] == 1 and "prediction_drift_score" not in m
    assert m["error_rate"] == 0.02 and m["label_coverage"] == 0.0 and m["production_labels"] == 0
    assert window_id(s) == "seldon|m|1.17.1|classifier|1793491200"
    assert window_id(summary("it's", T0, None)) == "seldon|it_s|1.17.1||1793491200"
    with pytest.raises(ValueError):
        MlflowSink("sqlite:///x.db", attempts=0)
    with pytest.raises(ValueError):
        MlflowSink("sqlite:///x.db", client=object()).add(summary("", T0, None))


def test_is_transient():
    assert is_transient(requests.ConnectionError())
    assert is_transient(requests.Timeout())
    assert is_transient(MlflowException("x", error_code=TEMPORARILY_UNAVAILABLE))
    assert not is_transient(MlflowException("x", error_code=INVALID_PARAMETER_VALUE))
    assert not is_transient(ValueError("x"))
    gave_up = MlflowException("API request failed with exception too many 503 error responses")
    gave_up.__context__ = requests.exceptions.RetryError("too many 503 error responses")
    assert is_transient(gave_up)  # MLflow's own retries of 429/5xx ran out


def test_is_permanent():
    assert is_permanent(MlflowException("x", error_code=INVALID_PARAMETER_VALUE))
    assert is_permanent(MlflowException("x", error_code=RESOURCE_DOES_NOT_EXIST))
    assert is_permanent(FileNotFoundError("report.html"))
    assert not is_permanent(MlflowException("x"))  # INTERNAL_ERROR: a server error, retried
    assert not is_permanent(MlflowException("x", error_code=TEMPORARILY_UNAVAILABLE))
    assert not is_permanent(requests.ConnectionError())
    assert not is_permanent(requests.HTTPError("502"))
    assert Metric("a", 1.0, 0, 0).value == 1.0
