"""The CBPE estimate of a window summary (`performance.estimated`) as gauge samples.

One definition for both sinks (`sinks.prometheus` live, `sinks.openmetrics_file` for
backfill): per metric (accuracy, precision, recall, f1, roc_auc) the estimate, its
confidence band (value ± 3 sampling errors, clipped to [0, 1]) and the lower alert
threshold learned from the reference; undefined (null) values give no sample.

>>> perf = {"estimated": {"rows": 9, "calibrated": False, "metrics": {"accuracy": {
...     "value": 0.8, "lower": 0.7, "upper": 0.9, "lower_threshold": 0.75, "alert": False}}}}
>>> for sample in estimated_samples(perf):
...     print(*sample)
model_performance_estimated accuracy 0.8
model_performance_estimated_lower accuracy 0.7
model_performance_estimated_upper accuracy 0.9
model_performance_estimated_lower_threshold accuracy 0.75
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# family -> (field of an estimate, help)
FAMILIES = {
    "model_performance_estimated": ("value", "CBPE estimate of a metric, no labels needed"),
    "model_performance_estimated_lower": ("lower", "Lower confidence bound of the estimate"),
    "model_performance_estimated_upper": ("upper", "Upper confidence bound of the estimate"),
    "model_performance_estimated_lower_threshold": (
        "lower_threshold", "Alert threshold: reference chunks' mean - 3 std of the metric"),
}


def estimated_samples(perf: dict[str, Any]) -> Iterator[tuple[str, str, float]]:
    """(family, metric, value) of a summary's `performance` dict."""
    estimated = (perf or {}).get("estimated") or {}
    for metric, e in sorted((estimated.get("metrics") or {}).items()):
        for family, (field, _) in FAMILIES.items():
            v = e.get(field)
            if isinstance(v, int | float) and not isinstance(v, bool):
                yield family, metric, float(v)
