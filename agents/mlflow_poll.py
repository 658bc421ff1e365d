"""One poll of an MLflow tracking server → an `MlflowSnapshot` for the exporter's collector.

What is read (MlflowClient calls, each paged):

- the active experiments whose name matches the include pattern;
- per experiment, its newest `runs_per_experiment` runs by start time (the bound on
  series: at most that many run durations and metric sets per experiment);
- the runs in state RUNNING of those experiments (``mlflow_experiment_active_runs``);
- every registered model version whose model name matches (``mlflow_registered_model_versions``
  and which run made which version).

A run's model identity (the ``model_name`` and ``version`` labels): the registered model
versions made from it (registry name and version number); else its ``model_name`` and
``model_version`` tags (predlog's monitoring runs, `sinks/mlflow_sink.py`, and the seed's
`ProductionPerformanceTracker` tag ``model_name``); else the experiment name without the
seed's ``-training`` / ``-production-monitoring`` suffix, with version ``""``. Per
experiment and identity, the newest run's metrics are exported. ``accuracy`` is also
filled from ``production_accuracy`` (monitoring runs) or, failing that, ``test_accuracy``
(the seed's training runs) when a run did not log ``accuracy`` itself, so the seed's
``mlflow_metric_accuracy`` panel shows training and production accuracy per model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from sinks.mlflow_collector import MlflowSnapshot

SUFFIXES = ("-production-monitoring", "-training")
ACCURACY_FALLBACKS = ("production_accuracy", "test_accuracy")
_PAGE = 1000


def _paged(call: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        page = call(page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def run_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """A run's metrics as exported: as logged, plus ``accuracy`` from its fallbacks.

    >>> run_metrics({"test_accuracy": 0.9, "loss": 0.2})
    {'test_accuracy': 0.9, 'loss': 0.2, 'accuracy': 0.9}
    >>> run_metrics({"accuracy": 0.8, "production_accuracy": 0.7})["accuracy"]
    0.8
    """
    out = dict(metrics)
    if "accuracy" not in out:
        for name in ACCURACY_FALLBACKS:
            if name in out:
                out["accuracy"] = out[name]
                break
    return out


def model_of_experiment(experiment: str) -> str:
    """The model an experiment of the seed's naming is about.

    >>> model_of_experiment("iris-production-monitoring"), model_of_experiment("x")
    ('iris', 'x')
    """
    for suffix in SUFFIXES:
        if experiment.endswith(suffix) and len(experiment) > len(suffix):
            return experiment[: -len(suffix)]
    return experiment


class MlflowPoller:
    """Reads an MLflow tracking server into an `MlflowSnapshot` (raises when it cannot).

    Parameters
    ----------
    client
        An `mlflow.MlflowClient`.
    runs_per_experiment
        How many of each experiment's newest runs are read.
    include
        A regular expression (searched) that experiment and registered model names must
        match; ``""`` takes every one.
    """

    def __init__(self, client: Any, runs_per_experiment: int = 20, include: str = "") -> None:
        if runs_per_experiment < 1:
            raise ValueError(f"runs_per_experiment must be >= 1, got {runs_per_experiment!r}")
        self.client = client
        self.runs_per_experiment = runs_per_experiment
        self.include = re.compile(include)

    def poll(self) -> MlflowSnapshot:
        experiments = {e.experiment_id: e.name
                       for e in _paged(self.client.search_experiments, max_results=_PAGE)
                       if self.include.search(e.name)}
        versions = [v for v in _paged(self.client.search_model_versions, max_results=_PAGE)
                    if self.include.search(v.name)]
        registered: dict[str, list[tuple[str, str]]] = {}
        model_versions: dict[tuple[str, str], int] = {}
        for v in versions:
            if v.run_id:
                registered.setdefault(v.run_id, []).append((v.name, str(v.version)))
            key = (v.name, str(v.current_stage or "None"))
            model_versions[key] = model_versions.get(key, 0) + 1

        metrics: dict[tuple[str, str, str, str], float] = {}
        durations: dict[tuple[str, str], float] = {}
        active = dict.fromkeys(experiments.values(), 0)
        for exp_id, exp_name in experiments.items():
            runs = self.client.search_runs(
                [exp_id], order_by=["attributes.start_time DESC"],
                max_results=self.runs_per_experiment)
            seen: set[tuple[str, str]] = set()
            for run in runs:  # newest first: the first run of an identity wins
                info, data = run.info, run.data
                run_key = (exp_name, info.run_name or info.run_id)
                if info.end_time and info.start_time and run_key not in durations:
                    durations[run_key] = (info.end_time - info.start_time) / 1000
                tags = data.tags
                identities = registered.get(info.run_id) or [(
                    tags.get("model_name") or model_of_experiment(exp_name),
                    tags.get("model_version", ""))]
                for model, version in identities:
                    if (model, version) in seen:
                        continue
                    seen.add((model, version))
                    for name, value in run_metrics(data.metrics).items():
                        metrics[(name, model, version, exp_name)] = float(value)
        ids = list(experiments)
        for i in range(0, len(ids), 100):
            for run in _paged(self.client.search_runs, experiment_ids=ids[i:i + 100],
                              filter_string="attributes.status = 'RUNNING'",
                              max_results=_PAGE):
                active[experiments[run.info.experiment_id]] += 1
        return MlflowSnapshot(metrics=metrics, run_durations=durations, active_runs=active,
                              model_versions=model_versions)
