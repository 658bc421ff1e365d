"""`predlog mlflow-exporter`: MLflow's runs and registry as Prometheus metrics.

Polls the tracking server (``PREDLOG_MLFLOW_TRACKING_URI``) every
``PREDLOG_MLFLOW_EXPORTER_INTERVAL_SECONDS`` with `MlflowPoller` and serves the last
snapshot through `MlflowCollector` on ``http://HOST:PORT/metrics``
(``PREDLOG_MLFLOW_EXPORTER_HOST``/``_PORT``, 127.0.0.1:6067 by default). A failed poll
keeps the previous values and sets ``predlog_mlflow_exporter_up`` to 0. It runs apart
from the workers (its own Deployment), so MLflow's latency never touches the stream.

The MLflow client retries a failed request up to 7 times with exponential backoff by
default (minutes against a dead server); here one poll is one attempt per request with
``PREDLOG_MLFLOW_EXPORTER_TIMEOUT_SECONDS`` (MLflow reads both from the process
environment, which this command sets), and the next poll is the retry.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from agents.settings import Settings

log = logging.getLogger("predlog.mlflow_exporter")


class MlflowExporter:
    """Polls with `poller` into `collector` until `stop` is set."""

    def __init__(self, poller, collector, interval_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be > 0, got {interval_seconds!r}")
        self.poller, self.collector = poller, collector
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._failing = False

    def poll_once(self) -> bool:
        """One poll; True when it worked."""
        started = time.monotonic()
        try:
            snapshot = self.poller.poll()
        except Exception as exc:  # any failure: keep the last values, report down
            self.collector.mark_down()
            if not self._failing:
                log.warning("MLflow poll failed (%s: %s); keeping the last values",
                            type(exc).__name__, str(exc).splitlines()[0][:300] if str(exc) else "")
            self._failing = True
            return False
        self.collector.update(snapshot, now=self._clock())
        if self._failing:
            log.info("MLflow poll works again")
        self._failing = False
        log.debug("polled MLflow in %.2f s: %d metric series", time.monotonic() - started,
                  len(snapshot.metrics))
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self.poll_once()
            stop.wait(max(0.0, self.interval_seconds - (time.monotonic() - started)))


def run_mlflow_exporter(settings: Settings, stop: threading.Event | None = None) -> None:
    """Serve /metrics and poll until `stop` is set (or the process is stopped)."""
    if not settings.mlflow_tracking_uri:
        raise ValueError("PREDLOG_MLFLOW_TRACKING_URI is empty: the exporter needs a tracking "
                         "server")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(
        max(1, round(settings.mlflow_exporter_timeout_seconds)))
    from mlflow import MlflowClient

    from agents.mlflow_auth import apply_mlflow_credentials

    apply_mlflow_credentials(settings)  # MLflow's client reads them from the environment
    from prometheus_client import CollectorRegistry, start_http_server

    from agents.mlflow_poll import MlflowPoller
    from sinks.mlflow_collector import MlflowCollector

    collector = MlflowCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    poller = MlflowPoller(MlflowClient(tracking_uri=settings.mlflow_tracking_uri),
                          settings.mlflow_exporter_runs_per_experiment,
                          settings.mlflow_exporter_include)
    exporter = MlflowExporter(poller, collector, settings.mlflow_exporter_interval_seconds)
    server, thread = start_http_server(settings.mlflow_exporter_port,
                                       addr=settings.mlflow_exporter_host, registry=registry)
    log.info("serving http://%s:%d/metrics, polling %s every %g s",
             settings.mlflow_exporter_host, settings.mlflow_exporter_port,
             settings.mlflow_tracking_uri, settings.mlflow_exporter_interval_seconds)
    try:
        exporter.run(stop or threading.Event())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
