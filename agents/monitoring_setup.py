"""The window stage's `Monitoring`, built from the settings: one definition for both
drivers (replay and the worker's window stage)."""

from __future__ import annotations

from agents.settings import Settings, parse_references
from stream.monitoring import ANY_MODEL, ModelConfig, Monitoring


def make_monitoring(settings: Settings) -> Monitoring:
    """Drift against the configured references (`references`, `task`), performance within
    `label_horizon_seconds`, and an Evidently frame every `report_every` drift windows."""
    from agents.reference_cli import load_reference

    models = {name: ModelConfig(reference=load_reference(path), task=settings.task)
              for name, path in parse_references(settings.references).items()}
    models.setdefault(ANY_MODEL, ModelConfig(task=settings.task))
    return Monitoring(models, label_horizon=settings.label_horizon_seconds,
                      drift_min_rows=settings.drift_min_rows,
                      report_every=settings.report_every)
