"""MLflow sink against the real MLflow server of the local stack.

Two windows and a revision go through `MlflowSink`; the runs are then read back the
way the seed's `ProductionPerformanceTracker.compare_with_training` reads them.
Needs `deploy/stack/stack.sh up mlflow`.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

import msgspec
import pytest
import requests

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

from sinks.mlflow_sink import MlflowSink  # noqa: E402
from stream.eventtime import format_utc, seconds_to_ns  # noqa: E402
from stream.window_summary import WindowSummary  # noqa: E402


def _summary(model: str, start: float, accuracy: float, revision: int = 0) -> WindowSummary:
    s = {
        "model": model, "version": "1.17.1", "namespace": "seldon",
        "window_start": format_utc(seconds_to_ns(start)),
        "window_end": format_utc(seconds_to_ns(start + 300)),
        "requests": 50, "rows": 60, "predictions": 58, "errors": 2,
        "error_types": {"http_500": 2}, "unpaired_requests": 0,
        "latency_seconds": {"p50": 0.012, "p95": 0.04, "p99": 0.08, "mean": 0.015, "max": 0.1},
        "drift": {"dataset_drift": False, "drift_share": 0.25, "number_of_drifted_columns": 1,
                  "features": {}},
        "prediction_drift": {"stattest": "ks", "score": 0.3, "threshold": 0.05, "drift": False},
        "performance": {"labels": 20, "accuracy": accuracy, "precision_weighted": accuracy,
                        "recall_weighted": accuracy, "f1_weighted": accuracy - 0.02,
                        "f1_macro": accuracy - 0.03, "roc_auc": 0.9, "log_loss": 0.4,
                        "label_coverage": 20 / 58,
                        "label_delay_seconds": {"p50": 60.0, "p95": 600.0, "max": 900.0}},
    }
    if revision:
        s["revision"] = revision
    return WindowSummary.from_builtins(s)


def _seed_compare_with_training(client: MlflowClient, model_name: str, days_back: int = 7):
    """The seed's compare_with_training, verbatim but for the injected client."""
    training_exp = client.get_experiment_by_name(f"{model_name}-training")
    training_runs = client.search_runs(
        training_exp.experiment_id,
        order_by=["start_time DESC"],
        max_results=1
    )
    training_accuracy = training_runs[0].data.metrics.get('test_accuracy', 0)
    prod_exp = client.get_experiment_by_name(f"{model_name}-production-monitoring")
    cutoff_time = int((datetime.now() - timedelta(days=days_back)).timestamp() * 1000)
    prod_runs = client.search_runs(
        prod_exp.experiment_id,
        filter_string=f"attributes.start_time > {cutoff_time}"
    )
    if not prod_runs:
        return {'status': 'no_production_data'}
    prod_accuracies = [run.data.metrics.get('production_accuracy', 0) for run in prod_runs]
    avg_prod_accuracy = sum(prod_accuracies) / len(prod_accuracies)
    degradation = training_accuracy - avg_prod_accuracy
    return {
        'training_accuracy': training_accuracy,
        'avg_production_accuracy': avg_prod_accuracy,
        'degradation': degradation,
        'degradation_percentage': (degradation / training_accuracy) * 100,
        'samples_evaluated': len(prod_runs)
    }


def test_sink_runs_revision_and_degradation(stack, tmp_path):
    try:
        requests.get(f"{stack.mlflow_url}/health", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"MLflow not reachable at {stack.mlflow_url} ({exc}); "
                    "run deploy/stack/stack.sh up mlflow")
    model = f"iris-{uuid.uuid4().hex[:10]}"
    client = MlflowClient(tracking_uri=stack.mlflow_url)
    training = client.create_experiment(f"{model}-training")
    run = client.create_run(training, run_name="train")
    client.log_metric(run.info.run_id, "test_accuracy", 0.95)
    client.set_terminated(run.info.run_id)

    start = (time.time() // 300) * 300 - 3600  # windows an hour ago: inside the seed's 7 days
    report = tmp_path / "report-w1.html"
    report.write_text("<html>evidently</html>")
    sink = MlflowSink(stack.mlflow_url, backoff_seconds=0.2)
    sink.add(_summary(model, start, 0.90), report_html_path=str(report))
    sink.add(_summary(model, start + 300, 0.80))
    assert sink.flush() == 2
    sink.add(_summary(model, start, 0.86, revision=1), report_html_path=str(report))
    assert sink.flush() == 1

    prod = client.get_experiment_by_name(f"{model}-production-monitoring")
    try:
        runs = client.search_runs([prod.experiment_id], order_by=["attributes.start_time ASC"])
        assert len(runs) == 2  # the revision updated its window's run in place
        first, second = runs
        assert [r.data.tags["predlog.revision"] for r in runs] == ["1", "0"]
        assert first.info.run_name == f"production-{format_utc(seconds_to_ns(start + 300))}"
        assert first.data.tags["environment"] == "production"
        assert first.data.tags["model_name"] == model
        assert first.data.metrics["production_accuracy"] == 0.86
        assert first.data.metrics["production_f1"] == pytest.approx(0.84)
        assert first.data.metrics["batch_size"] == 58
        assert first.data.metrics["latency_p95"] == 0.04
        assert second.data.metrics["production_accuracy"] == 0.80
        found = client.search_runs(
            [prod.experiment_id],
            filter_string=f"tags.`predlog.window_id` = '{first.data.tags['predlog.window_id']}'")
        assert [r.info.run_id for r in found] == [first.info.run_id]
        assert [a.path for a in client.list_artifacts(first.info.run_id)] == ["drift_report.html"]
        local = client.download_artifacts(first.info.run_id, "drift_report.html", str(tmp_path))
        with open(local) as fh:
            assert fh.read() == "<html>evidently</html>"

        expected_avg = (0.86 + 0.80) / 2
        seed = _seed_compare_with_training(client, model)
        assert seed == {
            "training_accuracy": 0.95,
            "avg_production_accuracy": pytest.approx(expected_avg, abs=1e-12),
            "degradation": pytest.approx(0.95 - expected_avg, abs=1e-12),
            "degradation_percentage": pytest.approx((0.95 - expected_avg) / 0.95 * 100,
                                                    abs=1e-9),
            "samples_evaluated": 2,
        }
        ours = sink.compare_with_training(model)
        assert ours["status"] == "ok" and ours["degraded"] is True
        assert {k: ours[k] for k in seed} == seed
        assert ours["training_run_id"] == run.info.run_id
    finally:
        client.delete_experiment(prod.experiment_id)
        client.delete_experiment(training)


def test_flush_waits_out_an_outage_and_sets_a_refused_window_aside(stack, monkeypatch):
    """MLflow unreachable (a proxy in front of the shared server is cut): `flush` keeps
    retrying and reports each retry — before the fix it raised after 5 attempts, into the
    worker's stage — and completes once MLflow is back. A window the server refuses for
    good (a 400) is set aside for the dead-letter topic; the windows behind it are written."""
    import threading
    from urllib.parse import urlparse

    from tests.integration.proxy import TcpProxy

    # MLflow's client retries refused connections itself, for minutes: not here.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    url = urlparse(stack.mlflow_url)
    proxy = TcpProxy(url.hostname, url.port)
    model = f"iris-{uuid.uuid4().hex[:10]}"
    client = MlflowClient(tracking_uri=stack.mlflow_url)
    retries: list[BaseException] = []
    sink = MlflowSink(proxy.url, backoff_seconds=0.1, on_retry=retries.append)
    start = (time.time() // 300) * 300 - 3600
    try:
        proxy.cut()
        sink.add(_summary(model, start, 0.9))
        errors: list[BaseException] = []

        def flush() -> None:
            try:
                sink.flush()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=flush, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while len(retries) < 6 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(retries) >= 6, retries  # more than the 5 attempts it used to give up after
        assert thread.is_alive() and not errors, errors
        proxy.restore()
        thread.join(timeout=90)
        assert not thread.is_alive() and not errors, errors

        # an experiment name over MLflow's 500 characters: a 400
        refused = msgspec.structs.replace(_summary(model, start + 300, 0.8), model="m" * 600)
        sink.add(refused)
        sink.add(_summary(model, start + 600, 0.7))
        assert sink.flush() == 1
        [(window, exc)] = sink.take_rejected()
        assert window.window_start == format_utc(seconds_to_ns(start + 300))
        assert exc.get_http_status_code() == 400, exc

        prod = client.get_experiment_by_name(f"{model}-production-monitoring")
        runs = client.search_runs([prod.experiment_id], order_by=["attributes.start_time ASC"])
        accuracies = [r.data.metrics.get("production_accuracy") for r in runs]
        assert accuracies == [0.9, 0.7]
    finally:
        proxy.close()
        prod = client.get_experiment_by_name(f"{model}-production-monitoring")
        if prod is not None:
            client.delete_experiment(prod.experiment_id)
