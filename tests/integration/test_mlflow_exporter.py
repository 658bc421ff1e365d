"""`predlog mlflow-exporter` against the real MLflow server and the real Prometheus.

On the stack's MLflow: a `<model>-training` experiment with two finished training runs
(``test_accuracy``, each registered as a model version, one moved to Staging) and one
still running, and predlog monitoring runs written by `MlflowSink` as the worker writes
them (four windows; the exporter reads the newest three). The exporter runs as a
subprocess (`predlog mlflow-exporter`) behind a TCP relay to MLflow, the stack's
Prometheus scrapes it (a file_sd target), and every query of the seed's "MLflow Model
Performance" dashboard, verbatim from deploy/grafana/seed/, returns the expected series.
Then the relay closes (MLflow unreachable for the exporter; the shared server keeps
running): the exporter reports ``predlog_mlflow_exporter_up 0`` and keeps its last values.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

from sinks.mlflow_sink import MlflowSink  # noqa: E402
from stream.eventtime import format_utc, seconds_to_ns  # noqa: E402
from stream.window_summary import WindowSummary  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SEED_BOARD = REPO / "deploy" / "grafana" / "seed" / "mlflow-model-performance.json"
T0 = 1_790_000_000.0  # window starts (event time) of the monitoring runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """A TCP relay 127.0.0.1:port → target; `close()` makes the target unreachable."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.closed:
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.listener.close()
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def _summary(model: str, start: float, accuracy: float) -> WindowSummary:
    return WindowSummary.from_builtins({"model": model, "version": "1.0", "namespace": "seldon",
            "window_start": format_utc(seconds_to_ns(start)),
            "window_end": format_utc(seconds_to_ns(start + 300)),
            "requests": 40, "rows": 40, "predictions": 40, "errors": 0,
            "latency_seconds": {"p50": 0.01, "p95": 0.03, "p99": 0.05, "mean": 0.012, "max": 0.06},
            "drift": {"dataset_drift": False, "drift_share": 0.0, "number_of_drifted_columns": 0,
                      "features": {}},
            "performance": {"labels": 40, "accuracy": accuracy, "f1_weighted": accuracy}})


def _training_run(client: MlflowClient, exp_id: str, name: str, start_ms: int,
                  seconds: float | None, test_accuracy: float | None) -> str:
    run = client.create_run(exp_id, start_time=start_ms, run_name=name)
    if test_accuracy is not None:
        client.log_metric(run.info.run_id, "test_accuracy", test_accuracy)
    if seconds is not None:
        client.set_terminated(run.info.run_id, "FINISHED", end_time=start_ms + int(seconds * 1000))
    return run.info.run_id


def _query(prometheus: str, expr: str) -> list[dict]:
    body = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def _mine(result: list[dict], token: str) -> list[dict]:
    return [r for r in result if r["metric"].get("mlflow_exporter_test") == token]


def _wait(what: str, check, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


@pytest.fixture()
def mlflow_content(stack):
    """Training runs, registered versions and monitoring runs under unique names."""
    token = uuid.uuid4().hex[:10]
    model = f"xp{token}-iris"
    client = MlflowClient(tracking_uri=stack.mlflow_url)
    exp_id = client.create_experiment(f"{model}-training")
    now_ms = int(time.time() * 1000)
    run1 = _training_run(client, exp_id, "train-1", now_ms - 7_200_000, 125.0, 0.91)
    run2 = _training_run(client, exp_id, "train-2", now_ms - 3_600_000, 310.5, 0.93)
    _training_run(client, exp_id, "train-3-running", now_ms - 60_000, None, None)
    client.create_registered_model(model)
    v1 = client.create_model_version(model, f"runs:/{run1}/model", run_id=run1)
    v2 = client.create_model_version(model, f"runs:/{run2}/model", run_id=run2)
    client.transition_model_version_stage(model, v2.version, "Staging")
    sink = MlflowSink(stack.mlflow_url)
    for i, acc in enumerate((0.70, 0.72, 0.74, 0.77)):
        sink.add(_summary(model, T0 + 300 * i, acc))
    assert sink.flush() == 4
    yield {"token": token, "model": model, "v1": str(v1.version), "v2": str(v2.version)}


def _start_exporter(tracking_uri: str, port: int, include: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "PREDLOG_MLFLOW_TRACKING_URI": tracking_uri,
           "PREDLOG_MLFLOW_EXPORTER_PORT": str(port),
           "PREDLOG_MLFLOW_EXPORTER_INTERVAL_SECONDS": "1",
           "PREDLOG_MLFLOW_EXPORTER_TIMEOUT_SECONDS": "3",
           "PREDLOG_MLFLOW_EXPORTER_RUNS_PER_EXPERIMENT": "3",
           "PREDLOG_MLFLOW_EXPORTER_INCLUDE": include}
    return subprocess.Popen([sys.executable, "-m", "agents.cli", "mlflow-exporter"], env=env,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _scrape(port: int) -> str:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.RequestException:
        return ""


def test_seed_mlflow_dashboard_queries_return_data(stack, mlflow_content):
    token, model = mlflow_content["token"], mlflow_content["model"]
    training, monitoring = f"{model}-training", f"{model}-production-monitoring"
    host, port = stack.mlflow_url.rsplit("//", 1)[1].split(":")
    relay = Relay((host, int(port)))
    exporter_port = _free_port()
    proc = _start_exporter(f"http://127.0.0.1:{relay.port}", exporter_port, f"^xp{token}-")
    targets = Path(stack.stack_dir, "prometheus", "targets")
    targets.mkdir(parents=True, exist_ok=True)
    target = targets / f"mlflow-exporter-{token}.json"
    try:
        _wait("the exporter's first poll",
              lambda: "predlog_mlflow_exporter_up 1.0" in _scrape(exporter_port), 60)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{exporter_port}"],
                                    "labels": {"mlflow_exporter_test": token}}]))
        os.replace(tmp, target)
        _wait("Prometheus scraping the exporter", lambda: _query(
            stack.prometheus_url,
            f'predlog_mlflow_exporter_up{{mlflow_exporter_test="{token}"}} == 1'))

        board = json.loads(SEED_BOARD.read_text())["dashboard"]
        queries = {p["title"]: p["targets"][0]["expr"] for p in board["panels"]}
        assert queries == {"Model Accuracy Over Time": "mlflow_metric_accuracy",
                           "Training Duration": "mlflow_run_duration_seconds",
                           "Active Experiments": "count(mlflow_experiment_active_runs)",
                           "Model Registry Size": "sum(mlflow_registered_model_versions)"}

        accuracy = {(r["metric"]["model_name"], r["metric"]["version"],
                     r["metric"]["experiment"]): float(r["value"][1])
                    for r in _mine(_query(stack.prometheus_url,
                                          queries["Model Accuracy Over Time"]), token)}
        assert accuracy == {(model, mlflow_content["v1"], training): 0.91,
                            (model, mlflow_content["v2"], training): 0.93,
                            # the newest of the windows (monitoring runs start at window start)
                            (model, "1.0", monitoring): 0.77}

        durations = {(r["metric"]["experiment"], r["metric"]["run_name"]): float(r["value"][1])
                     for r in _mine(_query(stack.prometheus_url,
                                           queries["Training Duration"]), token)}
        windows = [f"production-{format_utc(seconds_to_ns(T0 + 300 * i + 300))}" for i in (1, 2, 3)]
        assert durations == {(training, "train-1"): 125.0, (training, "train-2"): 310.5,
                             **{(monitoring, name): 300.0 for name in windows}}

        active = _query(stack.prometheus_url, queries["Active Experiments"])
        assert [float(r["value"][1]) for r in active] == [2.0]  # this test's two experiments
        runs = {r["metric"]["experiment"]: float(r["value"][1]) for r in _mine(
            _query(stack.prometheus_url, "mlflow_experiment_active_runs"), token)}
        assert runs == {training: 1.0, monitoring: 0.0}

        registry = _query(stack.prometheus_url, queries["Model Registry Size"])
        assert [float(r["value"][1]) for r in registry] == [2.0]
        stages = {r["metric"]["stage"]: float(r["value"][1]) for r in _mine(
            _query(stack.prometheus_url, "mlflow_registered_model_versions"), token)}
        assert stages == {"None": 1.0, "Staging": 1.0}

        # MLflow unreachable (for this exporter): up 0, the last values stay
        relay.close()
        _wait("up 0 after MLflow became unreachable", lambda: _query(
            stack.prometheus_url,
            f'predlog_mlflow_exporter_up{{mlflow_exporter_test="{token}"}} == 0'), 60)
        time.sleep(3)  # a fresh scrape of the down exporter
        still = {(r["metric"]["model_name"], r["metric"]["version"], r["metric"]["experiment"]):
                 float(r["value"][1]) for r in _mine(
                     _query(stack.prometheus_url, "mlflow_metric_accuracy"), token)}
        assert still == accuracy
        assert [float(r["value"][1]) for r in _query(
            stack.prometheus_url, queries["Model Registry Size"])] == [2.0]
        assert proc.poll() is None, "the exporter must keep running while MLflow is down"
    finally:
        target.unlink(missing_ok=True)
        relay.close()
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        print(out)


def test_exporter_without_a_reachable_server_reports_down():
    """A dead port from the start: /metrics serves, up 0, no mlflow_* series."""
    dead = _free_port()  # nothing listens there
    port = _free_port()
    proc = _start_exporter(f"http://127.0.0.1:{dead}", port, "")
    try:
        text = _wait("the exporter serving", lambda: _scrape(port), 60)
        _wait("a failed poll", lambda: "predlog_mlflow_exporter_up 0.0" in _scrape(port), 30)
        text = _scrape(port)
        assert "mlflow_metric_" not in text
        assert "predlog_mlflow_exporter_last_success_timestamp_seconds" not in text
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
