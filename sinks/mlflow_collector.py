"""Prometheus collector for what an MLflow tracking server holds (`predlog mlflow-exporter`).

The seed's "MLflow Model Performance" dashboard queries ``mlflow_metric_accuracy``
(legend ``{{model_name}} - {{version}}``), ``mlflow_run_duration_seconds``
(``{{experiment}}``), ``count(mlflow_experiment_active_runs)`` and
``sum(mlflow_registered_model_versions)``. This collector exports those families from an
`MlflowSnapshot` (what one poll of the tracking server read, `agents/mlflow_poll.py`) at
scrape time:

- ``mlflow_metric_<name>{model_name,version,experiment}``: the latest value of each metric
  of the newest run per model and version in an experiment;
- ``mlflow_run_duration_seconds{experiment,run_name}``: end − start of finished runs;
- ``mlflow_experiment_active_runs{experiment}``: runs in state RUNNING, one series per
  active experiment (so ``count`` counts experiments);
- ``mlflow_registered_model_versions{model_name,stage}``: registered versions per stage;
- ``predlog_mlflow_exporter_up``: 1 when the last poll worked, else 0 (the previous
  snapshot's values stay exported), and
  ``predlog_mlflow_exporter_last_success_timestamp_seconds``.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> c = MlflowCollector()
>>> c.update(MlflowSnapshot(metrics={("accuracy", "iris", "3", "iris-training"): 0.97},
...                         active_runs={"iris-training": 0}), now=1000.0)
>>> r = CollectorRegistry(); r.register(c)
>>> r.get_sample_value("mlflow_metric_accuracy",
...                    {"model_name": "iris", "version": "3", "experiment": "iris-training"})
0.97
>>> c.mark_down(); r.get_sample_value("predlog_mlflow_exporter_up")
0.0
>>> r.get_sample_value("mlflow_experiment_active_runs", {"experiment": "iris-training"})
0.0
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "mlflow_metric_"
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def metric_family_name(mlflow_metric: str) -> str:
    """The Prometheus name an MLflow metric is exported as.

    >>> metric_family_name("val/loss-epoch.1")
    'mlflow_metric_val_loss_epoch_1'
    """
    return PREFIX + _INVALID.sub("_", mlflow_metric)


@dataclass(frozen=True)
class MlflowSnapshot:
    """One poll's values.

    metrics: (metric name, model_name, version, experiment) -> value;
    run_durations: (experiment, run_name) -> seconds; active_runs: experiment -> runs
    RUNNING; model_versions: (model_name, stage) -> versions.
    """

    metrics: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    run_durations: dict[tuple[str, str], float] = field(default_factory=dict)
    active_runs: dict[str, int] = field(default_factory=dict)
    model_versions: dict[tuple[str, str], int] = field(default_factory=dict)


class MlflowCollector(Collector):
    """Exports the last successful `MlflowSnapshot` and whether the last poll worked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot = MlflowSnapshot()
        self._up = 0
        self._last_success: float | None = None

    def update(self, snapshot: MlflowSnapshot, now: float) -> None:
        """A poll worked: export `snapshot` from now on."""
        with self._lock:
            self._snapshot, self._up, self._last_success = snapshot, 1, now

    def mark_down(self) -> None:
        """A poll failed: keep the last values, report up 0."""
        with self._lock:
            self._up = 0

    def describe(self) -> list[Metric]:
        # Fixed families only: the mlflow_metric_* names depend on what MLflow holds.
        return [self._up_family(0), self._durations({}), self._active({}), self._versions({})]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snap, up, last = self._snapshot, self._up, self._last_success
        yield self._up_family(up)
        if last is not None:
            yield GaugeMetricFamily(
                "predlog_mlflow_exporter_last_success_timestamp_seconds",
                "Unix time of the last poll of the MLflow tracking server that worked.",
                value=last)
        yield from self._metrics(snap.metrics)
        yield self._durations(snap.run_durations)
        yield self._active(snap.active_runs)
        yield self._versions(snap.model_versions)

    # one helper per family -------------------------------------------------------------------
    @staticmethod
    def _up_family(up: int) -> GaugeMetricFamily:
        return GaugeMetricFamily("predlog_mlflow_exporter_up",
                                 "1 when the last poll of the MLflow tracking server worked.",
                                 value=float(up))

    @staticmethod
    def _metrics(values: dict[tuple[str, str, str, str], float]) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        seen: set[tuple[str, str, str, str]] = set()
        for (name, model, version, experiment), value in sorted(values.items()):
            family_name = metric_family_name(name)
            if (family_name, model, version, experiment) in seen:
                continue  # two MLflow names that sanitize alike ("a.b", "a_b"): the first wins
            seen.add((family_name, model, version, experiment))
            family = families.get(family_name)
            if family is None:
                family = families[family_name] = GaugeMetricFamily(
                    family_name, f"Latest value of MLflow metric {name} of the newest run per "
                    "model and version.", labels=["model_name", "version", "experiment"])
            family.add_metric([model, version, experiment], value)
        yield from families.values()

    @staticmethod
    def _durations(values: dict[tuple[str, str], float]) -> GaugeMetricFamily:
        family = GaugeMetricFamily("mlflow_run_duration_seconds",
                                   "End minus start time of a finished MLflow run.",
                                   labels=["experiment", "run_name"])
        for (experiment, run_name), seconds in sorted(values.items()):
            family.add_metric([experiment, run_name], seconds)
        return family

    @staticmethod
    def _active(values: dict[str, int]) -> GaugeMetricFamily:
        family = GaugeMetricFamily("mlflow_experiment_active_runs",
                                   "Runs in state RUNNING per active MLflow experiment.",
                                   labels=["experiment"])
        for experiment, runs in sorted(values.items()):
            family.add_metric([experiment], float(runs))
        return family

    @staticmethod
    def _versions(values: dict[tuple[str, str], int]) -> GaugeMetricFamily:
        family = GaugeMetricFamily("mlflow_registered_model_versions",
                                   "Registered model versions per model and stage.",
                                   labels=["model_name", "stage"])
        for (model, stage), n in sorted(values.items()):
            family.add_metric([model, stage], float(n))
        return family
