"""Alert rules: promtool check/test, the PrometheusRule is the same content, and every alert
is unit-tested both firing and not firing, on metric names docs/metrics.md defines."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from tests.deploy.conftest import DEPLOY, K8S, run
from tests.deploy.dashboards import documented_metrics, series_names

RULES_DIR = DEPLOY / "prometheus" / "rules"
RULES = RULES_DIR / "predlog.yml"
TESTS_DIR = DEPLOY / "prometheus" / "tests"
EXPECTED_EXAMPLE = DEPLOY / "prometheus" / "expected-models.example.yml"

ALERTS = {
    "HighPredictionErrorRate", "HighPredictionLatency", "LowRequestRate", "ModelAbsent",
    "DataDriftDetected", "ModelAccuracyDegraded", "LowLabelCoverage", "PredlogWorkerDown",
    "PredlogIngestDown", "PipelineLag", "PredlogConsumerLag", "DeadLettersRising",
    "PredlogMlflowExporterDown",
    "EstimatedPerformanceDropped",
}


def _rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_promtool_check_rules():
    files = sorted(RULES_DIR.glob("*.yml")) + [EXPECTED_EXAMPLE]
    proc = run(["promtool", "check", "rules", *map(str, files)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests():
    tests = sorted(TESTS_DIR.glob("*_test.yml"))
    assert tests
    proc = run(["promtool", "test", "rules", *map(str, tests)], cwd=TESTS_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_expected_alerts_exist_with_severity_and_runbook():
    rules = [r for r in _rules() if "alert" in r]
    assert {r["alert"] for r in rules} == ALERTS
    for r in rules:
        assert r["labels"]["severity"] in {"critical", "warning"}, r["alert"]
        assert {"summary", "description", "runbook"} <= r["annotations"].keys(), r["alert"]
        assert r.get("for"), f"{r['alert']} has no for:"
    by_name = {r["alert"]: r for r in rules}
    # the seed's thresholds, durations and severities
    assert by_name["HighPredictionErrorRate"]["for"] == "5m"
    assert by_name["HighPredictionErrorRate"]["labels"]["severity"] == "critical"
    assert "> 0.05" in by_name["HighPredictionErrorRate"]["expr"]
    assert by_name["HighPredictionLatency"]["for"] == "10m"
    assert "histogram_quantile(0.95" in by_name["HighPredictionLatency"]["expr"]
    assert by_name["DataDriftDetected"]["for"] == "1m"
    assert "== 1" in by_name["DataDriftDetected"]["expr"]
    assert by_name["LowRequestRate"]["for"] == "15m"
    assert "> 0.05" in by_name["ModelAccuracyDegraded"]["expr"]
    assert 'up{job="predlog"} == 0' in by_name["PredlogWorkerDown"]["expr"]
    drift = by_name["DataDriftDetected"]["annotations"]
    assert "feature_name" in drift["drifted_features"]
    assert "-production-monitoring" in drift["runbook"]
    assert "predlog-predictions-*" in drift["runbook"]


def test_every_alert_is_unit_tested_firing_and_not_firing():
    firing, quiet = set(), set()
    for path in TESTS_DIR.glob("*_test.yml"):
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert ALERTS - firing == set(), "never tested firing"
    assert ALERTS - quiet == set(), "never tested not firing"


def test_rules_use_documented_metrics_only():
    documented = documented_metrics()
    known = {s for name, m in documented.items() for s in series_names(name, m["type"])}
    known |= {"up", "predlog:model_expected"}
    promql_words = {"sum", "max", "min", "by", "on", "rate", "increase", "histogram_quantile",
                    "and", "or", "unless", "group", "last_over_time", "le", "without",
                    "ignoring", "group_left", "count", "vector"}
    for rule in _rules():
        expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", rule["expr"])
        names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)) - promql_words
        labels = {"namespace", "model_name", "model_version", "topic", "reason", "source", "le",
                  "metric"}
        unknown = names - known - labels
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"


def test_prometheusrule_is_generated_from_the_rules_file():
    proc = subprocess.run([sys.executable, str(DEPLOY / "prometheus" / "sync.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    obj = yaml.safe_load((K8S / "base" / "app" / "prometheusrule.yaml").read_text())
    assert obj["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_expected_models_example_matches_the_prod_overlay_form():
    example = yaml.safe_load(EXPECTED_EXAMPLE.read_text())["groups"]
    prod = yaml.safe_load((K8S / "overlays" / "prod" / "expected-models.yaml").read_text())
    assert prod["spec"]["groups"] == example
