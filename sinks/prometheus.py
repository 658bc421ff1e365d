"""Prometheus sink: the seed's metrics (and predlog's own) from pairs and window summaries.

A custom `Collector` reads the current state at scrape time. State is kept per
model (namespace, model, version, node), so after a rebalance a worker drops the
models it no longer owns (`retain`) and stops exporting their series. Names,
labels and buckets are the contract in docs/metrics.md. Deployment-level counters
count only a puid's entry node, so a multi-node graph is not counted twice.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from sinks.estimated import FAMILIES as ESTIMATED
from sinks.health import SinkHealth
from sinks.quality import summary_quality_samples
from stream.pairs import OrphanResponse, Pair
from stream.window_summary import WindowSummary

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INPUT_SIZE_BUCKETS = (1, 10, 50, 100, 500, 1000)
PREDICTION_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.5, 5.0, 10.0)
LABEL_DELAY_BUCKETS = (1, 10, 60, 300, 900, 3600, 21600, 86400, 604800)

ModelKey = tuple[str, str, str, str]  # namespace, model, version, node


class Histogram:
    """Cumulative-bucket histogram state (what a Prometheus histogram exports)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, int]]:
        out, acc = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            acc += n
            out.append(("+Inf" if bound == math.inf else repr(float(bound)), acc))
        return out


@dataclass
class ModelState:
    requests: int = 0
    predictions: int = 0
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unpaired: int = 0
    orphans: int = 0
    late: int = 0
    windows: int = 0
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    input_size: Histogram = field(default_factory=lambda: Histogram(INPUT_SIZE_BUCKETS))
    prediction: Histogram = field(default_factory=lambda: Histogram(PREDICTION_BUCKETS))
    last_summary: WindowSummary | None = None
    last_window_end: int | None = None  # ns since the epoch


def _numeric_prediction(output: list[Any] | None) -> float | None:
    """The value a prediction histogram observes: the value, or the max class probability."""
    if not output:
        return None
    values = [v for v in output if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(values) != len(output):
        return None
    return float(values[0]) if len(values) == 1 else float(max(values))


class PrometheusSink(Collector):
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._models: dict[ModelKey, ModelState] = defaultdict(ModelState)
        self.dead_letters: dict[tuple[str, str], int] = defaultdict(int)
        self.consumed: dict[str, int] = defaultdict(int)
        self.decoded: dict[str, int] = defaultdict(int)  # consumed = decoded + dead letters
        self.consumer_lag: dict[tuple[str, int], int] = {}
        self.labels_joined: dict[ModelKey, int] = defaultdict(int)
        self.label_delay: dict[str, Histogram] = {}
        self.labels_unmatched: dict[str, int] = defaultdict(int)
        self.degradation: dict[str, float] = {}
        self.sink_health = SinkHealth()  # the driver records its sinks' retries here

    @staticmethod
    def key(pair: Pair | OrphanResponse) -> ModelKey:
        m = pair.model
        return (m.namespace, m.model, m.version, m.node)

    # -- updates ----------------------------------------------------------------------------
    def add_pair(self, pair: Pair) -> None:
        if not pair.entry:
            return
        s = self._models[self.key(pair)]
        s.requests += 1
        s.input_size.observe(pair.n_rows)
        if pair.error_type is None:
            s.predictions += pair.n_rows or len(pair.outputs or ())
            for output in pair.outputs or ():
                value = _numeric_prediction(output)
                if value is not None:
                    s.prediction.observe(value)
        else:
            s.errors[pair.error_type] += 1
            if pair.error_type == "no_response":
                s.unpaired += 1
        if pair.latency_ns is not None:
            s.latency.observe(pair.latency_ns / 1e9)  # seconds

    def add_late(self, pair: Pair) -> None:
        self._models[self.key(pair)].late += 1

    def add_orphan(self, orphan: OrphanResponse) -> None:
        self._models[self.key(orphan)].orphans += 1

    def add_summary(self, summary: WindowSummary, window_end: int) -> None:
        """`window_end`: int ns (`WindowKey.end`)."""
        key = (summary.namespace, summary.model, summary.version, summary.node)
        s = self._models[key]
        if not summary.revision:
            s.windows += 1
        if s.last_window_end is None or window_end >= s.last_window_end:
            s.last_summary = summary
            s.last_window_end = window_end

    def add_joined(self, joined: Any) -> None:
        m = joined.prediction.model
        self.labels_joined[(m.namespace, m.model, m.version, m.node)] += 1
        if joined.delay_ns is not None:
            hist = self.label_delay.setdefault(m.model, Histogram(LABEL_DELAY_BUCKETS))
            hist.observe(joined.delay_ns / 1e9)  # seconds

    def add_unmatched_label(self, source: str) -> None:
        self.labels_unmatched[source] += 1

    def add_dead_letter(self, reason: str, source: str) -> None:
        self.dead_letters[(reason, source)] += 1

    def retain(self, keep: Callable[[ModelKey], bool]) -> None:
        """Forget models this worker no longer owns (after a rebalance)."""
        for key in [k for k in self._models if not keep(k)]:
            del self._models[key]

    def models(self) -> Iterable[ModelKey]:
        return list(self._models)

    # -- collection ---------------------------------------------------------------------------
    def collect(self):
        base = ["model_name", "model_version", "namespace", "node"]
        c_pred = CounterMetricFamily("model_predictions", "Prediction rows answered", labels=base)
        c_req = CounterMetricFamily("model_requests", "Requests (a batch once)", labels=base)
        c_err = CounterMetricFamily("model_prediction_errors", "Failed or unanswered requests",
                                    labels=[*base, "error_type"])
        c_unp = CounterMetricFamily("predlog_unpaired_requests", "Requests never answered",
                                    labels=base)
        c_orph = CounterMetricFamily("predlog_orphan_responses", "Responses without request",
                                     labels=base)
        c_late = CounterMetricFamily("predlog_late_events", "Pairs after their window closed",
                                     labels=base)
        c_win = CounterMetricFamily("predlog_windows_emitted", "Window summaries emitted",
                                    labels=base)
        h_lat = HistogramMetricFamily("model_prediction_latency_seconds",
                                      "Prediction latency in seconds", labels=base)
        h_size = HistogramMetricFamily("model_input_size", "Size of input batch", labels=base)
        h_pred = HistogramMetricFamily("model_prediction_value", "Predicted value", labels=base)
        g_feat = GaugeMetricFamily("model_feature_value", "Feature statistics (last window)",
                                   labels=[*base, "feature_name", "stat_type"])
        g_wlat = GaugeMetricFamily("model_window_latency_seconds",
                                   "Exact latency quantiles of the last window",
                                   labels=[*base, "quantile"])
        g_werr = GaugeMetricFamily("model_window_error_ratio", "Errors / requests, last window",
                                   labels=base)
        g_wreq = GaugeMetricFamily("model_window_requests", "Requests in the last window",
                                   labels=base)
        g_lag = GaugeMetricFamily("predlog_window_lag_seconds",
                                  "Wall clock minus the end of the newest emitted window",
                                  labels=base)
        g_dd = GaugeMetricFamily("evidently_dataset_drift", "Dataset drift (0/1), last window",
                                 labels=base)
        g_ds = GaugeMetricFamily("evidently_drift_share", "Share of drifted features",
                                 labels=base)
        g_fd = GaugeMetricFamily("evidently_feature_drift", "Drift score per feature",
                                 labels=[*base, "feature_name", "stattest"])
        g_pds = GaugeMetricFamily("model_prediction_drift_score", "Prediction drift score",
                                  labels=[*base, "stattest"])
        g_pd = GaugeMetricFamily("model_prediction_drift", "Prediction drift (0/1)", labels=base)
        g_perf = GaugeMetricFamily("model_performance", "Performance of the last labelled window",
                                   labels=[*base, "metric"])
        g_cov = GaugeMetricFamily("model_label_coverage", "Labelled share of predictions",
                                  labels=base)
        g_est = {name: GaugeMetricFamily(name, text, labels=[*base, "metric"])
                 for name, (_, text) in ESTIMATED.items()}
        # drift and performance (sinks.quality), of the window and of each segment
        quality = {g.name: g for g in (g_dd, g_ds, g_fd, g_pds, g_pd, g_perf, g_cov,
                                       *g_est.values())}
        now = self._clock()
        for key, s in sorted(self._models.items()):
            lv = [key[1], key[2], key[0], key[3]]
            c_pred.add_metric(lv, s.predictions)
            c_req.add_metric(lv, s.requests)
            for et, n in sorted(s.errors.items()):
                c_err.add_metric([*lv, et], n)
            c_unp.add_metric(lv, s.unpaired)
            c_orph.add_metric(lv, s.orphans)
            c_late.add_metric(lv, s.late)
            c_win.add_metric(lv, s.windows)
            h_lat.add_metric(lv, s.latency.buckets(), s.latency.sum)
            h_size.add_metric(lv, s.input_size.buckets(), s.input_size.sum)
            h_pred.add_metric(lv, s.prediction.buckets(), s.prediction.sum)
            summary = s.last_summary
            if summary is None:
                continue
            g_lag.add_metric(lv, max(0.0, now - s.last_window_end / 1e9))  # seconds
            for fname, stats in summary.feature_stats.items():
                for stat, v in stats.items():
                    g_feat.add_metric([*lv, fname, stat], v)
            for q, name in (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")):
                v = summary.latency_seconds.get(name)
                if v is not None:
                    g_wlat.add_metric([*lv, q], v)
            g_wreq.add_metric(lv, summary.requests)
            if summary.requests:
                g_werr.add_metric(lv, summary.errors / summary.requests)
            labels = dict(zip(base, lv, strict=True))
            for family, extra, v in summary_quality_samples(summary):
                g = quality[family]
                g.add_sample(g.name, {**labels, **dict(extra)}, v)
        yield from (c_pred, c_req, c_err, c_unp, c_orph, c_late, c_win, h_lat, h_size, h_pred,
                    g_feat, g_wlat, g_werr, g_wreq, g_lag, g_dd, g_ds, g_fd, g_pds, g_pd,
                    g_perf, g_cov, *g_est.values())
        c_dl = CounterMetricFamily("predlog_dead_letters",
                                   "Records dead-lettered (undecodable, or refused by a sink)",
                                   labels=["reason", "source"])
        for (reason, source), n in sorted(self.dead_letters.items()):
            c_dl.add_metric([reason, source], n)
        c_con = CounterMetricFamily("predlog_events_consumed", "Records consumed",
                                    labels=["topic"])
        for topic, n in sorted(self.consumed.items()):
            c_con.add_metric([topic], n)
        c_dec = CounterMetricFamily("predlog_events_decoded",
                                    "Records consumed and decoded (the others are dead letters)",
                                    labels=["topic"])
        for topic, n in sorted(self.decoded.items()):
            c_dec.add_metric([topic], n)
        g_clag = GaugeMetricFamily("predlog_consumer_lag_records",
                                   "Log-end offset minus position", labels=["topic", "partition"])
        for (topic, part), n in sorted(self.consumer_lag.items()):
            g_clag.add_metric([topic, str(part)], n)
        yield from (c_dl, c_con, c_dec, g_clag)
        health = self.sink_health
        g_up = GaugeMetricFamily("predlog_sink_up",
                                 "1 when the sink's last write succeeded, 0 while it is retrying",
                                 labels=["sink"])
        c_retry = CounterMetricFamily("predlog_sink_retries", "Failed sink writes retried",
                                      labels=["sink"])
        for sink in sorted(health.sinks):
            g_up.add_metric([sink], 1.0 if health.up(sink) else 0.0)
            c_retry.add_metric([sink], health.retries[sink])
        yield from (g_up, c_retry)
        base = ["model_name", "model_version", "namespace", "node"]
        c_lj = CounterMetricFamily("predlog_labels_joined", "Labels joined to a prediction",
                                   labels=base)
        for (ns, model, version, node), n in sorted(self.labels_joined.items()):
            c_lj.add_metric([model, version, ns, node], n)
        c_lu = CounterMetricFamily("predlog_labels_unmatched",
                                   "Labels whose request id matched no prediction",
                                   labels=["source"])
        for source, n in sorted(self.labels_unmatched.items()):
            c_lu.add_metric([source], n)
        h_ld = HistogramMetricFamily("predlog_label_delay_seconds",
                                     "Label time minus prediction time", labels=["model_name"])
        for model, hist in sorted(self.label_delay.items()):
            h_ld.add_metric([model], hist.buckets(), hist.sum)
        g_deg = GaugeMetricFamily("model_accuracy_degradation",
                                  "Training test_accuracy minus production accuracy",
                                  labels=["model_name", "model_version", "namespace"])
        # The comparison is per model (its MLflow experiments are); every version series of
        # the model carries it, so joins on (model_name, model_version) find it.
        seen = set()
        for ns, model, version, _node in sorted(self._models):
            if model in self.degradation and (ns, model, version) not in seen:
                seen.add((ns, model, version))
                g_deg.add_metric([model, version, ns], self.degradation[model])
        yield from (c_lj, c_lu, h_ld, g_deg)
