"""MLflow sink: one monitoring run per model window, in the seed's naming.

Experiment ``<model>-production-monitoring``; run name ``production-<window_end>``;
tags ``environment=production``, ``model_name``, ``model_version``, ``namespace``,
``node`` (when set), ``window_start``, ``window_end``, ``predlog.window_id``,
``predlog.revision``; metrics ``production_accuracy``, ``production_f1`` (weighted),
``batch_size`` (the window's predictions), ``dataset_drift`` (0/1), ``drift_share``,
``number_of_drifted_columns``, ``latency_p50/p95/p99/mean/max`` and the rest of the
summary (``production_<metric>`` for every performance metric, ``label_coverage``,
``label_delay_p50/p95/max``, requests, rows, errors, error_rate, unpaired_requests,
prediction drift); artifact ``drift_report.html`` when a report path is given, and
``reference.npz`` on the run of the first window compared with a bootstrap reference
(`stream.drift.bootstrap`: the profile built from the model's own first traffic).
Undefined (None) values are not logged. No params: MLflow params cannot change,
and a revision must be able to change everything.

Idempotence: a window's run is found again by ``tags.predlog.window_id``
(`stream.windows.WindowKey.id`: ``ns|model|version|node|start``),
so a replay or a revision updates the run in place. Metrics are logged at
``step = revision`` with the wall-clock time, so MLflow's latest value is the highest
revision's newest write; ``predlog.revision`` holds the highest revision seen. The
run's start/end times are the window bounds (event time), which is what the seed's
``attributes.start_time > cutoff`` filter in `compare_with_training` then selects on.
One window must be written by one sink at a time (search-then-create is not atomic).

`add` only buffers; `flush` writes in order, each window with retries (tenacity,
exponential backoff up to 30 s) until it is written, as long as the failure is not
permanent (connection errors, timeouts, MLflow's TEMPORARILY_UNAVAILABLE, server
errors): a worker's flush then blocks, which pauses its consumption (backpressure),
and `on_retry` is told of each retry. With `attempts` set it raises after that many
and keeps the unwritten windows for the next flush. A permanent failure (`is_permanent`:
an MLflow 4xx such as INVALID_PARAMETER_VALUE, or a non-MLflow error such as a missing
report file) does not block the windows behind it: that window is set aside with its
error for the driver to dead-letter (`take_rejected()`). Uses its own `MlflowClient`
(no fluent API, no global tracking state). A ``sqlite:///…`` store keeps artifacts in
``mlartifacts/`` beside the database unless `artifact_root` is given; MLflow 3.17's
``file://`` store also works but needs ``MLFLOW_ALLOW_FILE_STORE=true`` in the process
environment.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
    wait_exponential,
)

from stream.events import DeadLetter, SourceCoords
from stream.eventtime import parse_rfc3339, seconds_to_ns
from stream.window_summary import WindowSummary
from stream.windows import WindowKey

log = logging.getLogger("predlog.sinks.mlflow")
REPORT_NAME = "drift_report.html"
REFERENCE_NAME = "reference.npz"  # a bootstrap reference (`predlog reference` reads it)
_PERF = ("accuracy", "f1_weighted", "precision_weighted", "recall_weighted", "f1_macro",
         "roc_auc", "log_loss", "mae", "rmse", "r2", "mape", "labels")
_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


def is_transient(exc: BaseException) -> bool:
    """A connection-type failure worth retrying (looks through the exception chain).

    `requests`' RetryError is what MLflow's client raises (chained) after its own retries
    of 429 and 5xx answers: the server is there but not able to answer now.
    """
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, requests.ConnectionError | requests.Timeout | ConnectionError
                      | TimeoutError | requests.exceptions.RetryError):
            return True
        if isinstance(seen, MlflowException) and seen.error_code in _TRANSIENT_CODES:
            return True
        if type(seen).__name__ == "OperationalError" and "locked" in str(seen):
            return True  # sqlite: database is locked
        seen = seen.__cause__ or seen.__context__
    return False


def is_permanent(exc: BaseException) -> bool:
    """A failure retrying cannot fix: the window is rejected instead of retried forever.

    MLflow's 4xx answers (a bad parameter, a value too long...) and errors that are not
    MLflow's (a missing report file, a bad summary); not transient ones, and not MLflow
    server errors (5xx, or a client call that failed inside MLflow's own retries).
    """
    if is_transient(exc):
        return False
    if isinstance(exc, MlflowException):
        return 400 <= exc.get_http_status_code() < 500
    return not isinstance(exc, requests.RequestException)


def rejected_window(summary: WindowSummary, exc: BaseException) -> DeadLetter:
    """For the dead-letter topic: a window summary MLflow refused for good, and the error."""
    return DeadLetter("mlflow_rejected", f"{type(exc).__name__}: {exc}",
                      orjson.dumps(summary.to_builtins(), default=str,
                                   option=orjson.OPT_SORT_KEYS),
                      {"predlog-window-id": window_id(summary)}, SourceCoords("mlflow"))


def _ns(value: Any) -> int:
    """Epoch seconds or RFC 3339 text → int ns."""
    return seconds_to_ns(value) if isinstance(value, int | float) else parse_rfc3339(str(value))


def _ms(value: Any) -> int:
    return round(_ns(value), -6) // 1_000_000  # MLflow's ms, from ns (half to even)


def window_id(summary: WindowSummary) -> str:
    """The tag value a window's run is found by: `WindowKey.id`, as the other sinks use.

    >>> window_id(WindowSummary(namespace="seldon", model="iris", version="1.0", node="clf",
    ...     window_start="2026-11-01T00:00:00Z", window_end="2026-11-01T00:05:00Z",
    ...     requests=0, rows=0, predictions=0, errors=0))
    'seldon|iris|1.0|clf|1793491200'
    """
    wid = WindowKey(summary.namespace, summary.model, summary.version, summary.node,
                    _ns(summary.window_start), 0).id
    return wid.replace("'", "_")


def window_metrics(summary: WindowSummary) -> dict[str, float]:
    """The MLflow metrics of a window summary (None values left out)."""
    out: dict[str, Any] = {"batch_size": summary.predictions, "requests": summary.requests,
                           "rows": summary.rows, "predictions": summary.predictions,
                           "errors": summary.errors,
                           "unpaired_requests": summary.unpaired_requests}
    if summary.requests:
        out["error_rate"] = summary.errors / summary.requests
    for q, v in summary.latency_seconds.items():
        out[f"latency_{q}"] = v
    drift = summary.drift
    if "dataset_drift" in drift:
        out["dataset_drift"] = int(bool(drift["dataset_drift"]))
    for k in ("drift_share", "number_of_drifted_columns"):
        out[k] = drift.get(k)
    pdrift = summary.prediction_drift or {}
    out["prediction_drift_score"] = pdrift.get("score")
    if "drift" in pdrift:
        out["prediction_drift"] = int(bool(pdrift["drift"]))
    perf = summary.performance
    for k in _PERF:
        out["production_f1" if k == "f1_weighted" else f"production_{k}"] = perf.get(k)
    out["label_coverage"] = perf.get("label_coverage")
    for q, v in (perf.get("label_delay_seconds") or {}).items():
        out[f"label_delay_{q}"] = v
    return {k: float(v) for k, v in out.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v == v}


class MlflowSink:
    """Buffers window summaries; `flush` writes one MLflow run per model window."""

    def __init__(self, tracking_uri: str, *, artifact_root: str | None = None,
                 attempts: int | None = None, backoff_seconds: float = 0.5,
                 clock: Callable[[], float] = time.time,
                 client: MlflowClient | None = None,
                 on_retry: Callable[[BaseException], None] | None = None) -> None:
        if attempts is not None and attempts < 1:
            raise ValueError(f"attempts must be >= 1 or None, got {attempts!r}")
        self.tracking_uri = tracking_uri
        self.client = client or MlflowClient(tracking_uri=tracking_uri)
        if artifact_root is None and tracking_uri.startswith("sqlite:///"):
            db = os.path.abspath(tracking_uri[len("sqlite:///"):])
            artifact_root = Path(os.path.dirname(db), "mlartifacts").as_uri()
        self.artifact_root = artifact_root
        self.on_retry = on_retry
        self._retrying = Retrying(
            stop=stop_never if attempts is None else stop_after_attempt(attempts),
            reraise=True, wait=wait_exponential(multiplier=backoff_seconds, max=30),
            retry=retry_if_exception(lambda exc: not is_permanent(exc)),
            before_sleep=self._before_sleep)
        self._clock = clock
        self._lock = threading.Lock()
        self._buffer: list[tuple[WindowSummary, str | None, Any]] = []
        self._experiments: dict[str, str] = {}
        self._runs: dict[tuple[str, str], str] = {}
        self._rejected: list[tuple[WindowSummary, BaseException]] = []

    def _before_sleep(self, state: Any) -> None:
        exc = state.outcome.exception()
        log.warning("MLflow write failed, retrying: %s", exc)
        if self.on_retry is not None and exc is not None:
            self.on_retry(exc)

    def add(self, summary: WindowSummary, report_html_path: str | None = None,
            reference: Any = None) -> None:
        """Buffer one window summary (and its Evidently HTML report file, and the reference
        profile it was the first to be compared with: a bootstrap reference, logged as the
        run's `REFERENCE_NAME` artifact)."""
        if not summary.model or not summary.window_end:
            raise ValueError("a window summary needs model and window_end")
        with self._lock:
            self._buffer.append((summary, report_html_path, reference))

    def __len__(self) -> int:
        return len(self._buffer)

    def flush(self) -> int:
        """Write the buffered windows; return how many were written.

        Blocks (retrying) while MLflow is unavailable; raises only after `attempts`
        tries when that is set. A window that fails permanently is taken out of the
        buffer and kept for `take_rejected()`.
        """
        with self._lock:
            written = 0
            while self._buffer:
                summary, report, reference = self._buffer[0]
                try:
                    self._retrying(self._write, summary, report, reference)
                except Exception as exc:
                    if not is_permanent(exc):
                        raise
                    log.error("MLflow rejected window %s: %s", window_id(summary), exc)
                    self._rejected.append((summary, exc))
                else:
                    written += 1
                self._buffer.pop(0)
            return written

    def take_rejected(self) -> list[tuple[WindowSummary, BaseException]]:
        """The windows MLflow refused for good since the last call, with their errors."""
        with self._lock:
            rejected, self._rejected = self._rejected, []
            return rejected

    def experiment_id(self, name: str) -> str:
        """Id of experiment `name`, created (or restored if deleted) when needed."""
        if name in self._experiments:
            return self._experiments[name]
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            location = f"{self.artifact_root}/{name}" if self.artifact_root else None
            try:
                exp_id = self.client.create_experiment(name, artifact_location=location)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                existing = self.client.get_experiment_by_name(name)
                assert existing is not None  # creating it failed: it exists
                exp_id = existing.experiment_id
        else:
            exp_id = exp.experiment_id
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp_id)
        self._experiments[name] = exp_id
        return exp_id

    def find_run(self, experiment_id: str, wid: str) -> Any | None:
        """The run tagged with window id `wid`, or None."""
        runs = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`predlog.window_id` = '{wid}'", max_results=1)
        return runs[0] if runs else None

    def _write(self, summary: WindowSummary, report: str | None, reference: Any = None
               ) -> None:
        exp_id = self.experiment_id(f"{summary.model}-production-monitoring")
        wid = window_id(summary)
        revision = summary.revision
        run_id, previous = self._runs.get((exp_id, wid)), 0
        run = self.find_run(exp_id, wid)
        if run is not None:
            run_id = run.info.run_id
            previous = int(run.data.tags.get("predlog.revision", "0") or 0)
        if run_id is None:
            run_id = self.client.create_run(
                exp_id, start_time=_ms(summary.window_start),
                run_name=f"production-{summary.window_end}").info.run_id
        self._runs[(exp_id, wid)] = run_id
        now = int(self._clock() * 1000)
        tags = {"environment": "production", "model_name": summary.model,
                "model_version": summary.version, "namespace": summary.namespace,
                "window_start": summary.window_start, "window_end": summary.window_end,
                "predlog.window_id": wid, "predlog.revision": str(max(revision, previous))}
        if summary.node:
            tags["node"] = summary.node
        metrics = [Metric(k, v, now, revision) for k, v in window_metrics(summary).items()]
        self.client.log_batch(run_id, metrics=metrics,
                              tags=[RunTag(k, v) for k, v in tags.items()])
        if report:
            self._log_report(run_id, report)
        if reference is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, REFERENCE_NAME)
                Path(path).write_bytes(reference.to_bytes())
                self.client.log_artifact(run_id, path)
        self.client.set_terminated(run_id, "FINISHED", end_time=_ms(summary.window_end))

    def _log_report(self, run_id: str, path: str) -> None:
        if os.path.basename(path) == REPORT_NAME:
            self.client.log_artifact(run_id, path)
            return
        with tempfile.TemporaryDirectory() as tmp:
            dst = os.path.join(tmp, REPORT_NAME)
            shutil.copyfile(path, dst)
            self.client.log_artifact(run_id, dst)

    def compare_with_training(self, model: str, days_back: float = 7, now: float | None = None,
                              threshold: float = 0.05) -> dict[str, Any]:
        """The seed's `compare_with_training`, returning a status instead of crashing.

        Statuses: ``ok``, ``no_training_experiment``, ``no_training_runs``,
        ``no_training_accuracy``, ``no_production_data``, ``no_labelled_windows``.
        Unlike the seed, production runs without ``production_accuracy`` (windows
        without labels) are left out of the average instead of counting as 0, and
        ``samples_evaluated`` counts the runs averaged. ``degraded`` replaces the
        seed's print: |degradation| > threshold.
        """
        return self._retrying(self._compare, model, days_back, now, threshold)

    def _compare(self, model: str, days_back: float, now: float | None,
                 threshold: float) -> dict[str, Any]:
        training_exp = self.client.get_experiment_by_name(f"{model}-training")
        if training_exp is None:
            return {"status": "no_training_experiment"}
        training_runs = self.client.search_runs(
            [training_exp.experiment_id], order_by=["start_time DESC"], max_results=1)
        if not training_runs:
            return {"status": "no_training_runs"}
        run_id = training_runs[0].info.run_id
        training_accuracy = training_runs[0].data.metrics.get("test_accuracy")
        if training_accuracy is None:
            return {"status": "no_training_accuracy", "training_run_id": run_id}
        prod_exp = self.client.get_experiment_by_name(f"{model}-production-monitoring")
        if prod_exp is None:
            return {"status": "no_production_data"}
        now = self._clock() if now is None else now
        cutoff = int((now - days_back * 86400) * 1000)
        prod_runs: list[Any] = []
        token: str | None = None
        while True:
            page = self.client.search_runs(
                [prod_exp.experiment_id], filter_string=f"attributes.start_time > {cutoff}",
                page_token=token)
            prod_runs += page
            token = page.token
            if not token:
                break
        if not prod_runs:
            return {"status": "no_production_data"}
        accuracies = [r.data.metrics["production_accuracy"] for r in prod_runs
                      if "production_accuracy" in r.data.metrics]
        if not accuracies:
            return {"status": "no_labelled_windows", "production_runs": len(prod_runs)}
        avg = sum(accuracies) / len(accuracies)
        degradation = training_accuracy - avg
        return {
            "status": "ok",
            "training_accuracy": training_accuracy,
            "avg_production_accuracy": avg,
            "degradation": degradation,
            "degradation_percentage": (degradation / training_accuracy * 100
                                       if training_accuracy else None),
            "samples_evaluated": len(accuracies),
            "degraded": abs(degradation) > threshold,
            "training_run_id": run_id,
        }
