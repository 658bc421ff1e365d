"""Grafana dashboards: importable JSON with stable uids and the datasource variable, built on
docs/metrics.md's metrics; and (integration) every panel query evaluates without error and
returns data on the real Prometheus, fed with synthetic values for every documented metric."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from tests.deploy.conftest import DEPLOY, REPO
from tests.deploy.dashboards import (
    SEED_DASHBOARDS,
    all_queries,
    documented_metrics,
    evaluable,
    iter_panels,
    load_dashboards,
    series_names,
)

UIDS = {"predlog-model-performance": "MLflow Model Performance",
        "predlog-serving": "Model Serving Performance",
        "predlog-quality": "Data & Model Quality",
        "predlog-pipeline": "predlog Pipeline Health"}


def test_dashboards_are_generated_and_up_to_date():
    proc = subprocess.run([sys.executable, str(DEPLOY / "grafana" / "generate.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# panels that deliberately count across all models
GLOBAL = {"Monitored Models", "Models Reporting"}


def test_dashboard_structure():
    boards = load_dashboards()
    per_model = [n for n, m in documented_metrics().items() if "model_name" in m["labels"]]
    assert {b["uid"]: b["title"] for b in boards.values()} == UIDS
    for name, board in boards.items():
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", board["uid"]), name
        assert "id" not in board or board["id"] is None  # importable into any Grafana
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        if "model_name" in variables:
            mv = variables["model_name"]
            assert mv["includeAll"] and mv["multi"] and mv["allValue"] == ".*"
            assert mv["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ids, grid = set(), []
        for panel in iter_panels(board["panels"]):
            assert panel["id"] not in ids, f"{name}: duplicate panel id"
            ids.add(panel["id"])
            g = panel["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0
            grid.append((g["x"], g["y"], g["w"], g["h"]))
            if panel["type"] in ("row", "alertlist"):
                continue
            assert panel["title"] and panel["targets"], f"{name}: {panel['title']}"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))
            for t in panel["targets"]:
                assert t["datasource"] == panel["datasource"]
                uses_model_metric = any(m in t["expr"] for m in per_model)
                if ("model_name" in variables and uses_model_metric
                        and "$model_name" not in t["expr"] and panel["title"] not in GLOBAL):
                    pytest.fail(f"{name}: {panel['title']} ignores the model variable")
        # no two panels overlap
        for i, (x, y, w, h) in enumerate(grid):
            for (x2, y2, w2, h2) in grid[i + 1:]:
                assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, name


def test_seed_panels_are_rebuilt():
    titles = {(q.dashboard, q.panel) for q in all_queries()}
    for uid, title in [
        ("predlog-model-performance", "Model Accuracy Over Time"),
        ("predlog-serving", "Request Rate"), ("predlog-serving", "Latency (p95, p99)"),
        ("predlog-serving", "Error Rate"), ("predlog-serving", "Prediction Count"),
        ("predlog-quality", "Dataset Drift Detected"), ("predlog-quality", "Drift Share"),
        ("predlog-quality", "Feature Drift Over Time"),
        ("predlog-quality", "Prediction Distribution"),
    ]:
        assert (uid, title) in titles
    exprs: dict[str, str] = {}
    for q in all_queries():
        exprs[q.panel] = exprs.get(q.panel, "") + " " + q.expr
    assert "model_prediction_value_bucket" in exprs["Prediction Distribution"]
    assert "histogram_quantile(0.5" in exprs["Prediction Distribution"]


SEED_DOC = REPO.parent / "shared" / "seed" / "09-monitoring-observability.md"


def test_seed_mlflow_dashboard_ships_verbatim():
    """deploy/grafana/seed/mlflow-model-performance.json is the seed's JSON block, unchanged
    (importable as it is through Grafana's HTTP API, POST /api/dashboards/db)."""
    shipped = (SEED_DASHBOARDS / "mlflow-model-performance.json").read_text()
    if not SEED_DOC.is_file():
        pytest.skip(f"seed document not found at {SEED_DOC}")
    block = re.search(r"### MLflow Metrics Dashboard\n```json\n(.*?)```", SEED_DOC.read_text(),
                      re.S)
    assert block and shipped == block.group(1)
    exprs = [q.expr for q in all_queries() if q.dashboard == "MLflow Model Performance"]
    assert sorted(exprs) == ["count(mlflow_experiment_active_runs)",
                             "mlflow_metric_accuracy", "mlflow_run_duration_seconds",
                             "sum(mlflow_registered_model_versions)"]


def test_every_documented_metric_is_on_a_dashboard():
    text = " ".join(q.expr for q in all_queries())
    missing = [name for name, m in documented_metrics().items()
               if not any(re.search(rf"\b{s}\b", text) for s in series_names(name, m["type"]))]
    assert not missing


def test_queries_use_only_documented_metrics_and_known_variables():
    documented = documented_metrics()
    known = {s for n, m in documented.items() for s in series_names(n, m["type"])} | {"up"}
    for q in all_queries():
        expr = evaluable(q.expr)  # raises on an unknown variable
        body = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"|\b(by|on|without|ignoring)\s*\([^)]*\)",
                      " ", expr)
        words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", body))
        metrics = {w for w in words
                   if w.startswith(("model_", "predlog_", "evidently_", "mlflow_"))}
        assert metrics <= known, f"{q.dashboard}/{q.panel}: {metrics - known}"
        assert metrics or "up" in words, f"{q.dashboard}/{q.panel}"


# ------------------------------------------------------------------ against real Prometheus

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SyntheticExporter:
    """Every metric of docs/metrics.md with plausible, moving values, on a free port."""

    def __init__(self, token: str):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.model = f"synthetic-{token}"
        self.children = []  # (kind, child)
        values = {"model_name": self.model, "model_version": "v1", "feature_name": "f0",
                  "error_type": "500", "reason": "invalid_json", "source": "predlog.events",
                  "topic": "predlog.events", "partition": "0", "detector": "adwin",
                  "stattest": "ks", "event_type": "request", "namespace": "deploy-test",
                  "version": "1", "experiment": f"synthetic-{token}-training",
                  "run_name": "train-1", "stage": "Production",
                  "sink": "elasticsearch", "metric": "accuracy"}
        for name, m in documented_metrics().items():
            labels = m["labels"]
            mtype = m["type"]
            if mtype.startswith("histogram"):
                buckets = [float(b) for b in re.findall(r"\b\d+(?:\.\d+)?\b", mtype)]
                buckets = sorted(set(buckets)) if len(buckets) > 3 else None
                kw = {"buckets": buckets} if buckets else {}
                metric = Histogram(name, name, labels, registry=self.registry, **kw)
                kind = "histogram"
            elif mtype.startswith("counter"):
                metric = Counter(name, name, labels, registry=self.registry)
                kind = "counter"
            else:
                metric = Gauge(name, name, labels, registry=self.registry)
                kind = "gauge01" if "0/1" in mtype else "gauge"
            # one child per enumerated label value (stat_type, metric, quantile, ...)
            combos = [{}]
            for label in labels:
                if label in ("segment_column", "segment"):
                    continue
                opts = m["values"].get(label) or [values[label]]
                combos = [{**c, label: v} for c in combos for v in opts]
            if "segment" in labels:  # the window's series (empty labels) and a segment's
                combos = [{**c, **seg} for c in combos for seg in (
                    {"segment_column": "", "segment": ""},
                    {"segment_column": "region", "segment": "north"})]
            for combo in combos:
                self.children.append((kind, name, metric.labels(**combo) if labels else metric))
        self._stop = threading.Event()
        self.port = _free_port()

    def tick(self, i: int) -> None:
        for kind, _name, child in self.children:
            if kind == "counter":
                child.inc(3)
            elif kind == "histogram":
                child.observe(0.2 + (i % 7) * 0.1)
            elif kind == "gauge01":
                child.set(1)
            else:
                child.set(0.1 + (i % 5) * 0.01)

    def __enter__(self):
        from prometheus_client import start_http_server

        self.server, self.thread = start_http_server(self.port, addr="127.0.0.1",
                                                     registry=self.registry)
        self.tick(0)

        def loop():
            i = 1
            while not self._stop.wait(0.5):
                self.tick(i)
                i += 1
        self.ticker = threading.Thread(target=loop, daemon=True)
        self.ticker.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.ticker.join(timeout=5)
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _query(url: str, expr: str) -> dict:
    resp = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    return body["data"]


@pytest.mark.integration
def test_every_panel_query_returns_data_on_real_prometheus(stack):
    try:
        requests.get(f"{stack.prometheus_url}/-/ready", timeout=3).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"Prometheus not reachable at {stack.prometheus_url} ({exc}); "
                    "run deploy/stack/stack.sh up prometheus")
    token = uuid.uuid4().hex[:10]
    targets = os.path.join(stack.stack_dir, "prometheus", "targets")
    os.makedirs(targets, exist_ok=True)
    target_file = os.path.join(targets, f"deploy-dashboards-{token}.json")
    with SyntheticExporter(token) as exporter:
        tmp = target_file + ".tmp"
        with open(tmp, "w") as fh:
            json.dump([{"targets": [f"127.0.0.1:{exporter.port}"],
                        "labels": {"deploy_test": token}}], fh)
        os.replace(tmp, target_file)
        try:
            probe = (f'count_over_time(model_requests_total{{model_name="{exporter.model}"}}[1m])'
                     " >= 3")
            deadline = time.monotonic() + 60
            while not _query(stack.prometheus_url, probe)["result"]:
                assert time.monotonic() < deadline, "synthetic target not scraped 3 times in 60s"
                time.sleep(1)
            empty, failed = [], []
            for q in all_queries():
                expr = evaluable(q.expr)
                try:
                    data = _query(stack.prometheus_url, expr)
                except AssertionError as exc:
                    failed.append(str(exc))
                    continue
                if not data["result"]:
                    empty.append(f"{q.dashboard} / {q.panel} / {q.ref_id}: {expr}")
            assert not failed, "\n".join(failed)
            assert not empty, "no data:\n" + "\n".join(empty)
            # the template variable queries (label_values(METRIC, model_name)) find the model
            for board in load_dashboards().values():
                for var in board["templating"]["list"]:
                    if var["type"] == "query":
                        metric = re.match(r"label_values\((\w+),", var["definition"]).group(1)
                        resp = requests.get(
                            f"{stack.prometheus_url}/api/v1/label/model_name/values",
                            params={"match[]": metric}, timeout=10).json()
                        assert exporter.model in resp["data"], var["definition"]
        finally:
            os.remove(target_file)


@pytest.mark.integration
def test_alert_rules_are_loaded_and_healthy_on_real_prometheus(stack):
    resp = requests.get(f"{stack.prometheus_url}/api/v1/rules", timeout=10).json()
    groups = {g["name"]: g for g in resp["data"]["groups"]
              if g["file"].endswith("deploy/prometheus/rules/predlog.yml")}
    assert set(groups) == {"predlog-model-serving", "predlog-pipeline"}
    for group in groups.values():
        for rule in group["rules"]:
            assert rule["health"] in ("ok", "unknown"), rule
            assert not rule.get("lastError"), rule
