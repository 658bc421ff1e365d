#!/usr/bin/env python3
"""Generate predlog's Grafana dashboards (deploy/grafana/dashboards/*.json).

    python3 deploy/grafana/generate.py          # (re)write the JSON files
    python3 deploy/grafana/generate.py --check  # exit 1 when a file is out of date

The seed's three dashboards (09-monitoring-observability.md) rebuilt on the metrics predlog
exports (docs/metrics.md), plus a pipeline-health dashboard. Every panel reads the data
source variable `${datasource}`; model panels filter on the multi-value `$model_name`
variable (All = `.*`). Plain JSON, importable through Grafana's UI/API, and shipped to
Grafana's dashboard sidecar as ConfigMaps (deploy/grafana/kustomization.yaml).
Standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
M = 'model_name=~"$model_name"'  # the model filter every model panel uses
# ... and the window's own series of the drift and performance families: a segment's
# (PREDLOG_SEGMENT_COLUMNS) carry segment_column and segment labels.
W = M + ', segment=""'
S = M + ', segment!=""'  # the segments' series


def _datasource_var() -> dict:
    return {
        "name": "datasource", "label": "Data source", "type": "datasource",
        "query": "prometheus", "refresh": 1, "hide": 0, "current": {},
        "options": [], "regex": "",
    }


def _model_var(metric: str) -> dict:
    q = f"label_values({metric}, model_name)"
    return {
        "name": "model_name", "label": "Model", "type": "query", "datasource": DS,
        "definition": q, "query": {"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2, "multi": True, "includeAll": True, "allValue": ".*", "sort": 1,
        "hide": 0, "regex": "", "options": [],
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


class Board:
    def __init__(self, uid: str, title: str, description: str, model_metric: str | None):
        self.uid, self.title, self.description = uid, title, description
        self.model_metric = model_metric
        self.panels: list[dict] = []
        self._x = self._y = 0
        self._row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"id": len(self.panels) + 1, "type": "row", "title": title,
                            "collapsed": False, "panels": [],
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y}})
        self._y += 1

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
            self._x = self._row_h = 0

    def panel(self, title: str, targets: list[tuple[str, str]], *, kind: str = "timeseries",
              unit: str = "short", w: int = 12, h: int = 8, description: str = "",
              thresholds: list[tuple[float | None, str]] | None = None,
              minmax: tuple[float | None, float | None] = (None, None),
              mappings: list[dict] | None = None) -> None:
        if self._x + w > 24:
            self._newline()
        defaults: dict = {"unit": unit, "color": {"mode": "palette-classic"}}
        if thresholds:
            defaults["thresholds"] = {"mode": "absolute", "steps": [
                {"value": v, "color": c} for v, c in thresholds]}
            if kind in ("stat", "gauge"):
                defaults["color"] = {"mode": "thresholds"}
        if minmax[0] is not None:
            defaults["min"] = minmax[0]
        if minmax[1] is not None:
            defaults["max"] = minmax[1]
        if mappings:
            defaults["mappings"] = mappings
        options: dict = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                         "tooltip": {"mode": "multi", "sort": "desc"}}
        if kind == "timeseries" and thresholds:
            defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
        if kind in ("stat", "gauge"):
            options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                       "orientation": "auto", "textMode": "auto", "colorMode": "background",
                       "graphMode": "none", "showThresholdLabels": False,
                       "showThresholdMarkers": True}
        self.panels.append({
            "id": len(self.panels) + 1, "type": kind, "title": title, "description": description,
            "datasource": DS,
            "gridPos": {"h": h, "w": w, "x": self._x, "y": self._y},
            "targets": [
                {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr,
                 "legendFormat": legend, "range": True, "instant": False}
                for i, (expr, legend) in enumerate(targets)
            ],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options,
        })
        self._x += w
        self._row_h = max(self._row_h, h)

    def alert_list(self, title: str, w: int = 24, h: int = 6) -> None:
        self._newline()
        self.panels.append({
            "id": len(self.panels) + 1, "type": "alertlist", "title": title,
            "gridPos": {"h": h, "w": w, "x": 0, "y": self._y},
            "options": {"alertName": "", "dashboardAlerts": False, "groupMode": "default",
                        "maxItems": 20, "sortOrder": 1, "stateFilter": {"firing": True, "pending": True},
                        "viewMode": "list", "alertInstanceLabelFilter": "{team=~\"ml|ml-platform\"}"},
        })
        self._y += h

    def json(self) -> dict:
        templating = [_datasource_var()]
        if self.model_metric:
            templating.append(_model_var(self.model_metric))
        return {
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["predlog", "ml-monitoring"], "timezone": "browser", "editable": True,
            "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"}, "fiscalYearStartMonth": 0,
            "links": [{"title": "predlog dashboards", "type": "dashboards", "tags": ["predlog"],
                       "asDropdown": True, "includeVars": True, "keepTime": True}],
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts", "type": "dashboard"}]},
            "templating": {"list": templating},
            "panels": self.panels,
        }


def model_performance() -> Board:
    b = Board("predlog-model-performance", "MLflow Model Performance",
              "Production model quality per window with labels (the numbers predlog logs to the "
              "MLflow experiment <model>-production-monitoring), compared with the training "
              "test_accuracy of <model>-training.", "model_performance")
    b.panel("Model Accuracy Over Time",
            [(f'max by (model_name, model_version) (model_performance{{metric="accuracy", {W}}})',
              "{{model_name}} - {{model_version}}")],
            unit="percentunit", minmax=(0, 1))
    b.panel("Accuracy Degradation vs Training",
            [(f"max by (model_name, model_version) (model_accuracy_degradation{{{M}}})",
              "{{model_name}} - {{model_version}}")],
            unit="percentunit", thresholds=[(None, "green"), (0.05, "red")],
            description="Training test_accuracy minus production accuracy (the seed's "
                        "compare_with_training); ModelAccuracyDegraded fires above 5%.")
    b.panel("Training Accuracy (MLflow test_accuracy)",
            [(f'max by (model_name, model_version) (model_performance{{metric="accuracy", {W}}})'
              f" + on (model_name, model_version) "
              f"max by (model_name, model_version) (model_accuracy_degradation{{{M}}})",
              "{{model_name}} - {{model_version}}")],
            unit="percentunit", minmax=(0, 1), w=8,
            description="Production accuracy + degradation = the newest <model>-training run's "
                        "test_accuracy.")
    b.panel("F1 (weighted, macro)",
            [(f'max by (model_name, model_version, metric) (model_performance{{metric=~"f1_weighted|f1_macro", {W}}})',
              "{{model_name}} {{metric}}")], unit="percentunit", minmax=(0, 1), w=8)
    b.panel("Precision / Recall / ROC AUC",
            [(f'max by (model_name, model_version, metric) (model_performance{{metric=~"precision_weighted|recall_weighted|roc_auc", {W}}})',
              "{{model_name}} {{metric}}")], unit="percentunit", minmax=(0, 1), w=8)
    b.panel("Regression Metrics (MAE, RMSE, R², MAPE)",
            [(f'max by (model_name, model_version, metric) (model_performance{{metric=~"mae|rmse|r2|mape|log_loss", {W}}})',
              "{{model_name}} {{metric}}")])
    b.panel("Label Coverage",
            [(f"max by (model_name, model_version) (model_label_coverage{{{W}}})",
              "{{model_name}} - {{model_version}}")],
            unit="percentunit", minmax=(0, 1), thresholds=[(None, "red"), (0.1, "green")],
            description="Labelled predictions / predictions of the last closed window.")
    b.panel("Estimated vs Realized Accuracy (CBPE, before labels)",
            [(f'max by (model_name, model_version) (model_performance_estimated{{metric="accuracy", {W}}})',
              "{{model_name}} estimated"),
             (f'max by (model_name, model_version) (model_performance_estimated_lower{{metric="accuracy", {W}}})',
              "{{model_name}} estimated lower"),
             (f'max by (model_name, model_version) (model_performance_estimated_upper{{metric="accuracy", {W}}})',
              "{{model_name}} estimated upper"),
             (f'max by (model_name, model_version) (model_performance_estimated_lower_threshold{{metric="accuracy", {W}}})',
              "{{model_name}} alert threshold"),
             (f'max by (model_name, model_version) (model_performance{{metric="accuracy", {W}}})',
              "{{model_name}} realized")],
            unit="percentunit", minmax=(0, 1), w=24,
            description="NannyML-style CBPE estimate of each window's accuracy from the model's "
                        "own probabilities (no labels needed), its band (± 3 sampling errors) "
                        "and the alert threshold learned from the reference; the realized "
                        "accuracy follows as late labels join. EstimatedPerformanceDropped "
                        "fires when the estimate is below the threshold.")
    b.panel("Accuracy by Segment",
            [(f'max by (model_name, segment_column, segment) (model_performance{{metric="accuracy", {S}}})',
              "{{model_name}} {{segment_column}}={{segment}}")],
            unit="percentunit", minmax=(0, 1), w=24,
            description="Accuracy of each segment's labelled predictions (PREDLOG_SEGMENT_COLUMNS: "
                        "the top PREDLOG_SEGMENT_TOP_K values of a categorical feature by rows, "
                        "the rest as __other__); empty without segment columns.")
    b.row("Monitoring runs and labels")
    b.panel("Monitored Models", [("count(count by (model_name) (predlog_windows_emitted_total))", "")],
            kind="stat", w=6, h=5,
            description="Models with a <model>-production-monitoring experiment (windows emitted).")
    b.panel("Monitoring Runs Logged (last 1h)",
            [(f"sum(increase(predlog_windows_emitted_total{{{M}}}[1h]))", "")],
            kind="stat", w=6, h=5, description="One MLflow run per model window.")
    b.panel("Labels Joined / s",
            [(f"sum by (model_name) (rate(predlog_labels_joined_total{{{M}}}[5m]))", "{{model_name}}")],
            unit="ops", w=12, h=5)
    b.panel("Label Delay (p50, p95)",
            [(f"histogram_quantile(0.5, sum by (model_name, le) (rate(predlog_label_delay_seconds_bucket{{{M}}}[5m])))",
              "p50 {{model_name}}"),
             (f"histogram_quantile(0.95, sum by (model_name, le) (rate(predlog_label_delay_seconds_bucket{{{M}}}[5m])))",
              "p95 {{model_name}}")], unit="s")
    b.panel("Unmatched Labels / s", [("sum by (source) (rate(predlog_labels_unmatched_total[5m]))", "{{source}}")],
            unit="ops", description="Labels whose request id matched no prediction.")
    return b


def serving() -> Board:
    b = Board("predlog-serving", "Model Serving Performance",
              "Requests, latency and errors per model from the model servers' request/response "
              "logs (predlog pairs them; latency = response time - request time).",
              "model_requests_total")
    b.panel("Request Rate",
            [(f"sum by (model_name, model_version) (rate(model_requests_total{{{M}}}[5m]))",
              "{{model_name}} v{{model_version}}")], unit="reqps")
    b.panel("Latency (p95, p99)",
            [(f"histogram_quantile(0.95, sum by (model_name, le) (rate(model_prediction_latency_seconds_bucket{{{M}}}[5m])))",
              "p95 - {{model_name}}"),
             (f"histogram_quantile(0.99, sum by (model_name, le) (rate(model_prediction_latency_seconds_bucket{{{M}}}[5m])))",
              "p99 - {{model_name}}")],
            unit="s", thresholds=[(None, "green"), (1, "red")])
    b.panel("Error Rate",
            [(f"sum by (model_name, error_type) (rate(model_prediction_errors_total{{{M}}}[5m]))",
              "{{model_name}} - {{error_type}}")], unit="reqps")
    b.panel("Error Ratio",
            [(f"sum by (model_name) (rate(model_prediction_errors_total{{{M}}}[5m])) / "
              f"sum by (model_name) (rate(model_requests_total{{{M}}}[5m]))", "{{model_name}} (5m rate)"),
             (f"max by (model_name) (model_window_error_ratio{{{M}}})", "{{model_name}} (last window)")],
            unit="percentunit", thresholds=[(None, "green"), (0.05, "red")])
    b.panel("Prediction Count",
            [(f"sum(rate(model_predictions_total{{{M}}}[5m])) by (model_name, model_version)",
              "{{model_name}} v{{model_version}}")], unit="ops",
            description="Prediction rows answered successfully (a batch of n counts n).")
    b.panel("Window Latency (exact p50, p95, p99)",
            [(f"max by (model_name, quantile) (model_window_latency_seconds{{{M}}})",
              "{{model_name}} q{{quantile}}")], unit="s",
            description="Exact quantiles over every paired request of the last closed window.")
    b.panel("Mean Latency",
            [(f"sum by (model_name) (rate(model_prediction_latency_seconds_sum{{{M}}}[5m])) / "
              f"sum by (model_name) (rate(model_prediction_latency_seconds_count{{{M}}}[5m]))",
              "{{model_name}}")], unit="s", w=8)
    b.panel("Input Batch Size (p50, p95)",
            [(f"histogram_quantile(0.5, sum by (model_name, le) (rate(model_input_size_bucket{{{M}}}[5m])))",
              "p50 {{model_name}}"),
             (f"histogram_quantile(0.95, sum by (model_name, le) (rate(model_input_size_bucket{{{M}}}[5m])))",
              "p95 {{model_name}}")], w=8)
    b.panel("Requests in Last Window",
            [(f"max by (model_name, model_version) (model_window_requests{{{M}}})",
              "{{model_name}} v{{model_version}}")], w=8)
    b.panel("Unpaired Requests / Orphan Responses",
            [(f"sum by (model_name) (rate(predlog_unpaired_requests_total{{{M}}}[5m]))", "unpaired {{model_name}}"),
             (f"sum by (model_name) (rate(predlog_orphan_responses_total{{{M}}}[5m]))", "orphan {{model_name}}")],
            unit="ops", w=12)
    b.panel("predlog Workers Up", [('sum(up{job="predlog"})', "workers")], kind="stat", w=6, h=8,
            thresholds=[(None, "red"), (1, "green")])
    b.panel("Models Reporting", [("count(count by (model_name) (model_requests_total))", "models")],
            kind="stat", w=6, h=8)
    return b


def quality() -> Board:
    b = Board("predlog-quality", "Data & Model Quality",
              "Data drift per model and feature (Evidently's tests, computed by predlog per "
              "window against the reference data), prediction drift and distributions. Reports: "
              "MLflow experiment <model>-production-monitoring, artifact drift_report.html.",
              "evidently_dataset_drift")
    b.panel("Dataset Drift Detected",
            [(f"max by (model_name) (evidently_dataset_drift{{{W}}})", "{{model_name}}")],
            kind="stat", w=8, thresholds=[(None, "green"), (1, "red")], minmax=(0, 1),
            mappings=[{"type": "value", "options": {
                "0": {"text": "no drift", "color": "green", "index": 0},
                "1": {"text": "DRIFT", "color": "red", "index": 1}}}])
    b.panel("Drift Share", [(f"max by (model_name) (evidently_drift_share{{{W}}})", "{{model_name}}")],
            kind="gauge", unit="percentunit", w=8, minmax=(0, 1),
            thresholds=[(None, "green"), (0.5, "red")])
    b.panel("Prediction Drift Detected",
            [(f"max by (model_name) (model_prediction_drift{{{W}}})", "{{model_name}}")],
            kind="stat", w=8, thresholds=[(None, "green"), (1, "red")], minmax=(0, 1))
    b.panel("Feature Drift Over Time",
            [(f"max by (model_name, feature_name, stattest) (evidently_feature_drift{{{W}}})",
              "{{feature_name}} ({{stattest}})")],
            description="Drift score per feature: p-value for ks/chisquare/z (drift when low), "
                        "distance for wasserstein/jensenshannon/psi (drift when high).")
    b.panel("Drift Share by Segment",
            [(f"max by (model_name, segment_column, segment) (evidently_drift_share{{{S}}})",
              "{{model_name}} {{segment_column}}={{segment}}")],
            unit="percentunit", minmax=(0, 1),
            description="Each segment's rows against the whole reference (a segment differs "
                        "from the reference in its own column by design: compare segments with "
                        "each other); empty without segment columns.")
    b.panel("Prediction Distribution",
            [(f"histogram_quantile(0.5, sum by (model_name, le) (rate(model_prediction_value_bucket{{{M}}}[5m])))",
              "median {{model_name}}"),
             (f"histogram_quantile(0.1, sum by (model_name, le) (rate(model_prediction_value_bucket{{{M}}}[5m])))",
              "p10 {{model_name}}"),
             (f"histogram_quantile(0.9, sum by (model_name, le) (rate(model_prediction_value_bucket{{{M}}}[5m])))",
              "p90 {{model_name}}")])
    b.panel("Prediction Drift Score",
            [(f"max by (model_name, stattest) (model_prediction_drift_score{{{W}}})",
              "{{model_name}} ({{stattest}})")])
    b.panel("Drift Early Warnings (online detectors)",
            [(f"max by (model_name, feature_name, detector) (predlog_drift_early_warning{{{M}}})",
              "{{model_name}} {{feature_name}} ({{detector}})")], minmax=(0, 1),
            description="1 when a river detector (ADWIN by default) flagged a change since the "
                        "last window.")
    b.panel("Feature Mean (last window)",
            [(f'max by (model_name, feature_name) (model_feature_value{{stat_type="mean", {M}}})',
              "{{model_name}} {{feature_name}}")])
    b.panel("Feature Std / Min / Max (last window)",
            [(f'max by (model_name, feature_name, stat_type) (model_feature_value{{stat_type=~"std|min|max", {M}}})',
              "{{model_name}} {{feature_name}} {{stat_type}}")], w=24)
    return b


def pipeline() -> Board:
    b = Board("predlog-pipeline", "predlog Pipeline Health",
              "predlog's own health: throughput, consumer and window lag, dead letters, late "
              "events, the ingest gateway.", "model_requests_total")
    b.panel("Events Consumed / s", [("sum by (topic) (rate(predlog_events_consumed_total[5m]))", "{{topic}}")],
            unit="ops")
    b.panel("Events Decoded / s",
            [("sum by (topic) (rate(predlog_events_decoded_total[5m]))", "{{topic}}")],
            unit="ops", description="Consumed and decoded; per topic, consumed = decoded + "
                                    "the records dead-lettered from it.")
    b.panel("Consumer Lag (records)",
            [("sum by (topic) (predlog_consumer_lag_records)", "{{topic}}"),
             ("max by (topic, partition) (predlog_consumer_lag_records)", "{{topic}}/{{partition}}")],
            thresholds=[(None, "green"), (10000, "red")],
            description="Log-end offset - committed position, group predlog; KEDA scales on it.")
    b.panel("Window Lag",
            [(f"max by (model_name) (predlog_window_lag_seconds{{{M}}})", "{{model_name}}")],
            unit="s", thresholds=[(None, "green"), (900, "red")],
            description="Wall clock - end of the newest emitted window (normal: up to "
                        "2 windows + allowed lateness).")
    b.panel("Dead Letters / s",
            [("sum by (reason, source) (rate(predlog_dead_letters_total[5m]))", "{{source}}: {{reason}}")],
            unit="ops", thresholds=[(None, "green"), (0.000001, "red")])
    b.panel("Sinks Up (0: retrying, consumption paused)",
            [("min by (sink) (predlog_sink_up)", "{{sink}}")], minmax=(0, 1),
            thresholds=[(None, "red"), (1, "green")],
            description="0 while a sink's writes fail and are retried (backpressure; the "
                        "worker's /readyz answers 503).")
    b.panel("Sink Retries / s",
            [("sum by (sink) (rate(predlog_sink_retries_total[5m]))", "{{sink}}")], unit="ops")
    b.panel("Late Events / s (after their window was emitted)",
            [(f"sum by (model_name) (rate(predlog_late_events_total{{{M}}}[5m]))", "{{model_name}}")],
            unit="ops")
    b.panel("Windows Emitted / min",
            [(f"sum by (model_name) (rate(predlog_windows_emitted_total{{{M}}}[5m])) * 60", "{{model_name}}")])
    b.panel("Ingest: Accepted / s",
            [("sum by (event_type) (rate(predlog_ingest_events_accepted_total[5m]))", "{{event_type}}")],
            unit="ops")
    b.panel("Ingest: Rejected / s",
            [("sum by (reason) (rate(predlog_ingest_events_rejected_total[5m]))", "{{reason}}")],
            unit="ops")
    b.panel("Targets Up",
            [('up{job=~"predlog|predlog-ingest|predlog-mlflow-exporter"}', "{{job}} {{instance}}")],
            minmax=(0, 1), w=12, h=6)
    b.panel("MLflow Exporter: Last Poll Worked / Age",
            [("max by (instance) (predlog_mlflow_exporter_up)", "up {{instance}}"),
             ("time() - max by (instance) "
              "(predlog_mlflow_exporter_last_success_timestamp_seconds)", "age (s) {{instance}}")],
            w=12, h=6,
            description="predlog mlflow-exporter: 1 when its last poll of the MLflow tracking "
                        "server worked (at 0 the mlflow_* values are the last ones read), and "
                        "seconds since the last poll that worked.")
    b.alert_list("predlog Alerts (firing and pending)")
    return b


BOARDS = {
    "model-performance.json": model_performance,
    "model-serving.json": serving,
    "data-quality.json": quality,
    "pipeline-health.json": pipeline,
}


def render() -> dict[str, str]:
    return {name: json.dumps(fn().json(), indent=2, ensure_ascii=False) + "\n"
            for name, fn in BOARDS.items()}


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [n for n, text in files.items()
                 if not (OUT / n).is_file() or (OUT / n).read_text() != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run python3 deploy/grafana/generate.py",
                  file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
