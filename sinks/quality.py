"""The drift and performance gauge samples of a window summary, or of one of its segments.

One definition for both sinks (`sinks.prometheus` live, `sinks.openmetrics_file` for
backfill). A segment's samples are the window's families with two more labels,
`segment_column` and `segment` (`stream.segments`); the window's own series have neither,
so the alert rules select them with `segment=""`.

>>> record = {"drift": {"dataset_drift": True, "drift_share": 0.5, "features": {
...     "x": {"stattest": "ks", "score": 0.01}}}, "prediction_drift": None,
...     "performance": {"labels": 3, "accuracy": 0.75, "label_coverage": 0.5, "task": "c"}}
>>> for family, labels, value in quality_samples(record, (("segment", "JFK"),)):
...     print(family, labels, value)
evidently_dataset_drift (('segment', 'JFK'),) 1.0
evidently_drift_share (('segment', 'JFK'),) 0.5
evidently_feature_drift (('segment', 'JFK'), ('feature_name', 'x'), ('stattest', 'ks')) 0.01
model_performance (('segment', 'JFK'), ('metric', 'accuracy')) 0.75
model_label_coverage (('segment', 'JFK'),) 0.5
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sinks.estimated import estimated_samples
from stream.window_summary import WindowSummary

Labels = tuple[tuple[str, str], ...]
# `performance` keys that are not metrics (counts, delays, matrices, names).
PERF_SKIP = {"labels", "label_coverage", "task", "confusion_matrix", "label_delay_seconds",
             "unscored", "classes", "estimated"}


def quality_samples(record: Mapping[str, Any], labels: Labels = ()
                    ) -> Iterator[tuple[str, Labels, float]]:
    """(family, labels, value) of the `drift`, `prediction_drift` and `performance` of
    `record` (a summary's, or a segment entry's), each series with `labels` first."""
    drift = record.get("drift") or {}
    if "dataset_drift" in drift:
        yield "evidently_dataset_drift", labels, 1.0 if drift["dataset_drift"] else 0.0
        yield "evidently_drift_share", labels, float(drift["drift_share"])
        for fname, f in drift.get("features", {}).items():
            yield ("evidently_feature_drift",
                   (*labels, ("feature_name", fname), ("stattest", f["stattest"])),
                   float(f["score"]))
    pdrift = record.get("prediction_drift") or {}
    if "stattest" in pdrift and "score" in pdrift:  # not {"status": "insufficient_data"}
        yield ("model_prediction_drift_score", (*labels, ("stattest", pdrift["stattest"])),
               float(pdrift["score"]))
        yield "model_prediction_drift", labels, 1.0 if pdrift["drift"] else 0.0
    perf = record.get("performance") or {}
    for metric, v in perf.items():
        if metric not in PERF_SKIP and isinstance(v, int | float) and not isinstance(v, bool):
            yield "model_performance", (*labels, ("metric", metric)), float(v)
    if perf.get("label_coverage") is not None:
        yield "model_label_coverage", labels, float(perf["label_coverage"])
    for family, metric, v in estimated_samples(perf):
        yield family, (*labels, ("metric", metric)), v


def summary_quality_samples(summary: WindowSummary) -> Iterator[tuple[str, Labels, float]]:
    """The window's samples, then each segment's (`segment_column`, `segment` labels)."""
    yield from quality_samples({"drift": summary.drift,
                                "prediction_drift": summary.prediction_drift,
                                "performance": summary.performance})
    for column, entries in sorted((summary.segments or {}).items()):
        for value, entry in sorted(entries.items()):
            yield from quality_samples(entry, (("segment_column", column), ("segment", value)))
