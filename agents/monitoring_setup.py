"""The window stage's `Monitoring`, built from the settings: one definition for both
drivers (replay and the worker's window stage)."""

from __future__ import annotations

import logging

from agents.settings import Settings, parse_references
from stream.monitoring import ANY_MODEL, ModelConfig, Monitoring

log = logging.getLogger("predlog.monitoring")


def make_monitoring(settings: Settings) -> Monitoring:
    """Drift against the configured references (`references`, `task`), performance within
    `label_horizon_seconds`, and an Evidently frame every `report_every` drift windows —
    none, with the error logged once, where Evidently is not installed (the container
    image): the windows go on without reports."""
    from agents.reference_cli import load_reference

    models = {name: ModelConfig(reference=load_reference(path), task=settings.task)
              for name, path in parse_references(settings.references).items()}
    models.setdefault(ANY_MODEL, ModelConfig(task=settings.task))
    report_every = settings.report_every
    if report_every:
        from sinks.evidently_report import evidently_missing

        if missing := evidently_missing():
            log.error("%s; PREDLOG_REPORT_EVERY=%d ignored, windows go on without reports",
                      missing, report_every)
            report_every = 0
    return Monitoring(models, label_horizon=settings.label_horizon_seconds,
                      drift_min_rows=settings.drift_min_rows, report_every=report_every,
                      bootstrap_seconds=settings.reference_bootstrap_seconds,
                      bootstrap_rows=settings.reference_bootstrap_rows,
                      segment_columns=settings.segments(),
                      segment_top_k=settings.segment_top_k)
