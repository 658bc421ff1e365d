"""Alerting end to end: a real worker → the real Prometheus (scrape + the production
alert rules) → the real Alertmanager → a webhook receiver.

The worker follows the wall clock (PREDLOG_WALL_CLOCK_LAG_SECONDS) with 10 s windows,
so windows of live traffic close within seconds. It has a reference profile (a CSV of
N(0, 1) features) for its model. Phase 1 sends traffic like the reference with a few
failures: the window closes without drift and nothing fires. Phase 2 shifts two of
the three features by 3 σ and fails 40 % of the requests: DataDriftDetected and
HighPredictionErrorRate must reach the webhook with the rules' labels and annotations.

The production rules wait minutes (`for:`); the test loads a copy of the two rules
with `for: 0s` as an extra rule group into the stack's Prometheus
($PREDLOG_STACK_DIR/prometheus/rules/e2e-<id>.yml, POST /-/reload) and removes it at
the end. The worker's model name is unique to the run, so alerts of other models (and
PredlogWorkerDown for the stack's static target) are ignored. The webhook listens on
the port of PREDLOG_STACK_ALERT_WEBHOOK_URL (the URL the stack's Alertmanager posts
to), else on the fixture's default.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import yaml
from kafka import KafkaConsumer

from tests.fixtures.alert_e2e import (
    FEATURES,
    WebhookReceiver,
    derive_rules,
    humanize_percentage,
    live_burst,
    reference_rows,
    write_reference_csv,
)
from tests.integration.workers import Deployment

WINDOW = 10.0
LAG = 5.0
ALERTS = {"DataDriftDetected", "HighPredictionErrorRate"}
N = 150
BUDGET = 110.0  # seconds after the worker is ready; with its start-up (<= 60 s) < 3 min


class Budget:
    """One deadline for all waits of a test."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def __call__(self, timeout: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            pytest.fail("the test's time budget is used up")
        return min(timeout, left)


def _webhook_port(stack) -> int:
    url = os.environ.get("PREDLOG_STACK_ALERT_WEBHOOK_URL")
    if not url:
        return stack.alert_webhook_port
    parsed = urlparse(url)
    assert parsed.hostname in ("127.0.0.1", "localhost") and parsed.path == "/alerts", url
    return parsed.port or 80


def _query(prom: str, expr: str) -> list:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert r["status"] == "success", r
    return r["data"]["result"]


def _wait_query(prom: str, expr: str, ok, timeout: float, what: str) -> list:
    deadline = time.monotonic() + timeout
    while True:
        res = _query(prom, expr)
        if ok(res):
            return res
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: {expr} gave {res} after {timeout:.0f}s")
        time.sleep(1)


def _rule_groups(prom: str) -> set[str]:
    r = httpx.get(f"{prom}/api/v1/rules", timeout=10).json()
    return {g["name"] for g in r["data"]["groups"]}


def _reload(prom: str, present: str | None = None, absent: str | None = None) -> None:
    r = httpx.post(f"{prom}/-/reload", timeout=30)
    assert r.status_code == 200, f"Prometheus reload failed: {r.status_code} {r.text}"
    deadline = time.monotonic() + 20
    while True:
        groups = _rule_groups(prom)
        if (present is None or present in groups) and (absent is None or absent not in groups):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"rule groups after reload: {sorted(groups)}")
        time.sleep(0.5)


@pytest.fixture
def e2e_rules(stack):
    """The two rules with `for: 0s` as an extra group of the stack's Prometheus."""
    group = f"predlog-e2e-{uuid.uuid4().hex[:12]}"
    folder = Path(stack.stack_dir) / "prometheus" / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"e2e-{group.rsplit('-', 1)[1]}.yml"
    path.write_text(yaml.safe_dump(derive_rules(ALERTS, group), sort_keys=False))
    try:
        _reload(stack.prometheus_url, present=group)
        yield group
    finally:
        path.unlink(missing_ok=True)
        _reload(stack.prometheus_url, absent=group)


@pytest.fixture
def deployment(stack, tmp_path):
    reference = tmp_path / "reference.csv"
    write_reference_csv(reference, reference_rows(500, seed=1))
    dep = Deployment(stack, window=WINDOW, ttl=3.0, lateness=2.0)
    dep.model = f"e2e{dep.suffix}"
    dep.extra_env = {"PREDLOG_REFERENCES": f"{dep.model}={reference}",
                     "PREDLOG_WALL_CLOCK_LAG_SECONDS": str(LAG),
                     "PREDLOG_BATCH_SECONDS": "0.2"}
    dep.create_topics()
    yield dep
    dep.stop()


def _summary(dep: Deployment, model: str, start: float, timeout: float = 30) -> dict:
    """The window summary of `model` starting at `start` (epoch seconds)."""
    consumer = KafkaConsumer(dep.topics["windows"], bootstrap_servers=dep.stack.kafka_bootstrap,
                             auto_offset_reset="earliest", group_id=None)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                for rec in batch:
                    s = json.loads(rec.value)
                    begin = datetime.fromisoformat(
                        s["window_start"].replace("Z", "+00:00")).timestamp()
                    if s["model"] == model and abs(begin - start) < 1e-6:
                        return s
    finally:
        consumer.close()
    pytest.fail(f"no summary of {model} for the window at {start}")


def test_drift_and_errors_reach_the_webhook(stack, deployment, e2e_rules):
    for url in (stack.prometheus_url, stack.alertmanager_url):
        httpx.get(f"{url}/-/ready", timeout=5).raise_for_status()
    model, it = deployment.model, deployment.suffix
    sel = f'model_name="{model}",it="{it}"'

    def mine(alert):
        return (alert["labels"].get("model_name") == model
                and alert["labels"].get("alertname") in ALERTS)

    with WebhookReceiver(_webhook_port(stack)) as hook:
        deployment.start_worker()
        budget = Budget(BUDGET)
        _wait_query(stack.prometheus_url, f'up{{it="{it}"}}', lambda r: r and
                    r[0]["value"][1] == "1", budget(20), "Prometheus does not scrape the worker")

        # Phase 1: like the reference, 2 % failures. Its window closes without drift.
        records, start1, failed1 = live_burst(model, WINDOW, N, shift={}, error_share=0.02,
                                              seed=2)
        deployment.produce(records)
        _wait_query(stack.prometheus_url, f"evidently_dataset_drift{{{sel}}}",
                    lambda r: r and float(r[0]["value"][1]) == 0.0, budget(45),
                    "phase 1 window without drift")
        _wait_query(stack.prometheus_url, f"sum(model_requests_total{{{sel}}})",
                    lambda r: r and float(r[0]["value"][1]) == N, budget(20), "phase 1 requests")
        time.sleep(budget(4))  # two more rule evaluations on the phase-1 state
        assert hook.alerts(mine) == [], "an alert fired on traffic like the reference"

        # Phase 2: a and b shifted by 3 σ, 40 % failures, in a later window.
        records, start2, failed2 = live_burst(model, WINDOW, N, shift={"a": 3.0, "b": 3.0},
                                              error_share=0.4, seed=3)
        assert start2 > start1
        deployment.produce(records)

        def both_firing(h):
            got = {a["labels"]["alertname"]: (p, payload, a)
                   for p, payload, a in h.alerts(mine) if a["status"] == "firing"}
            return got if set(got) == ALERTS else None

        firing = hook.wait_for(both_firing, timeout=budget(90))
        if not firing:
            active = _query(stack.prometheus_url, f'ALERTS{{model_name="{model}"}}')
            pytest.fail(f"alerts at the webhook: {hook.alerts(mine)}; in Prometheus: {active}")

    base = {"namespace": "prod", "model_name": model, "model_version": "1.0", "team": "ml"}
    for name, (path, payload, alert) in firing.items():
        assert path == "/alerts"
        assert payload["version"] == "4" and payload["receiver"] == "webhook"
        assert payload["groupLabels"] == {"alertname": name}
        assert alert["startsAt"] and "/graph?g0.expr=" in alert["generatorURL"]

    # DataDriftDetected: the rule's labels; annotations from the drifted window's figures.
    _, _, drift = firing["DataDriftDetected"]
    assert drift["labels"] == {**base, "alertname": "DataDriftDetected", "severity": "warning"}
    summary = _summary(deployment, model, start2, timeout=budget(20))
    d = summary["drift"]
    assert d["dataset_drift"] is True
    assert {f for f, x in d["features"].items() if x["drift"]} >= {"a", "b"}
    assert set(d["features"]) == set(FEATURES)
    ann = drift["annotations"]
    assert set(ann) == {"summary", "description", "drifted_features", "runbook"}
    assert ann["summary"] == "Data drift detected"
    assert ann["description"] == (
        f"Data drift detected for model {model} version 1.0: "
        f"{humanize_percentage(d['drift_share'])} of the features drifted in the last "
        "closed window.")
    listed = set(ann["drifted_features"].split(", "))
    assert listed == {f"{f} ({x['stattest']} {x['score']:.4g})"
                      for f, x in d["features"].items()}, ann["drifted_features"]
    assert f'evidently_feature_drift{{model_name="{model}"}}' in ann["runbook"]
    assert f"{model}-production-monitoring" in ann["runbook"]

    # HighPredictionErrorRate: the rule's labels; the ratio in the description.
    _, _, errors = firing["HighPredictionErrorRate"]
    assert errors["labels"] == {**base, "alertname": "HighPredictionErrorRate",
                                "severity": "critical"}
    ann = errors["annotations"]
    assert set(ann) == {"summary", "description", "runbook"}
    assert ann["summary"] == "High error rate in model serving"
    m = re.fullmatch(rf"Error rate is ([0-9.]+)% for {model} version 1\.0 \(namespace prod\): "
                     r"failed responses and requests never answered \(error_type no_response\) "
                     r"over requests, last 5m\.", ann["description"])
    assert m, ann["description"]
    assert 5.0 < float(m.group(1)) <= 100.0
    assert f'model_prediction_errors_total{{model_name="{model}"}}' in ann["runbook"]
    assert f'model:"{model}" AND error:*' in ann["runbook"]
