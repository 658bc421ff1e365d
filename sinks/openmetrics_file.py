"""Window summaries as an OpenMetrics file with timestamps, for Prometheus backfill.

`promtool tsdb create-blocks-from openmetrics metrics.prom DATA_DIR` turns the file
into TSDB blocks; copied into Prometheus' data directory they answer range queries
over the replayed period. Each sample is stamped with its window's end. Families are
written grouped, series in time order, one value per series and timestamp (the
latest revision wins), and the file ends with `# EOF`, as OpenMetrics requires.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from sinks.estimated import FAMILIES as ESTIMATED
from sinks.quality import summary_quality_samples
from stream.eventtime import parse_rfc3339, seconds
from stream.window_summary import WindowSummary

FAMILIES = {
    "model_window_requests": ("gauge", "Requests in the window"),
    "model_window_predictions": ("gauge", "Prediction rows answered in the window"),
    "model_window_errors": ("gauge", "Errors in the window"),
    "model_window_error_ratio": ("gauge", "Errors / requests in the window"),
    "model_window_latency_seconds": ("gauge", "Exact latency quantiles of the window"),
    "evidently_dataset_drift": ("gauge", "Dataset drift (0/1)"),
    "evidently_drift_share": ("gauge", "Share of drifted features"),
    "evidently_feature_drift": ("gauge", "Drift score per feature"),
    "model_prediction_drift_score": ("gauge", "Prediction drift score"),
    "model_performance": ("gauge", "Performance of the window's labelled predictions"),
    "model_label_coverage": ("gauge", "Labelled share of predictions"),
    **{name: ("gauge", text) for name, (_, text) in ESTIMATED.items()},
    "model_predictions": ("counter", "Prediction rows answered"),
    "model_requests": ("counter", "Requests"),
}


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    """Full precision, integers without a fraction."""
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _ts(iso: str) -> float:
    """A window bound's text → the sample timestamp, float seconds (from int ns)."""
    return seconds(parse_rfc3339(iso))


class OpenMetricsFileSink:
    """
    >>> sink = OpenMetricsFileSink()
    >>> sink.add_summary(WindowSummary(model="m", version="1", namespace="ns", node="n",
    ...     window_start="2020-01-01T00:00:00Z", window_end="2020-01-01T00:05:00Z",
    ...     requests=4, rows=4, predictions=3, errors=1,
    ...     latency_seconds={"p50": 0.1, "p95": 0.2, "p99": 0.3}))
    >>> print(sink.render().splitlines()[2])
    model_window_requests{model_name="m",model_version="1",namespace="ns",node="n"} 4 1577837100
    """

    def __init__(self) -> None:
        # family -> series labels -> timestamp -> value
        self._samples: dict[str, dict[tuple, dict[float, float]]] = defaultdict(
            lambda: defaultdict(dict))
        self._totals: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._counted: set[tuple] = set()

    def _put(self, family: str, labels: tuple, ts: float, value: float | None) -> None:
        if value is not None:
            self._samples[family][labels][ts] = float(value)

    def add_summary(self, s: WindowSummary) -> None:
        base = (("model_name", s.model), ("model_version", s.version),
                ("namespace", s.namespace), ("node", s.node))
        ts = _ts(s.window_end)
        self._put("model_window_requests", base, ts, s.requests)
        self._put("model_window_predictions", base, ts, s.predictions)
        self._put("model_window_errors", base, ts, s.errors)
        if s.requests:
            self._put("model_window_error_ratio", base, ts, s.errors / s.requests)
        for name, q in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
            self._put("model_window_latency_seconds", (*base, ("quantile", q)), ts,
                      s.latency_seconds.get(name))
        for family, extra, v in summary_quality_samples(s):
            if family in FAMILIES:
                self._put(family, (*base, *extra), ts, v)
        window = (base, ts)
        if window not in self._counted:  # counters: once per window, not per revision
            self._counted.add(window)
            totals = self._totals[base]
            totals["model_predictions"] += s.predictions
            totals["model_requests"] += s.requests
            self._put("model_predictions", base, ts, totals["model_predictions"])
            self._put("model_requests", base, ts, totals["model_requests"])

    def render(self) -> str:
        lines: list[str] = []
        for family, (kind, help_text) in FAMILIES.items():
            series = self._samples.get(family)
            if not series:
                continue
            lines.append(f"# TYPE {family} {kind}")
            lines.append(f"# HELP {family} {help_text}")
            sample = f"{family}_total" if kind == "counter" else family
            for labels in sorted(series):
                text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels)
                for ts in sorted(series[labels]):
                    lines.append(f"{sample}{{{text}}} {_num(series[labels][ts])} {_num(ts)}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        path.write_text(self.render(), encoding="utf-8")
