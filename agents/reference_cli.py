"""`predlog reference build`: a reference profile from a CSV/Parquet file or an MLflow
run's dataset artifact; and the file helpers workers and replay load references with.

    predlog reference build train.csv --out iris.ref.npz --prediction label \\
        --categorical region --stattest petal_width=psi --threshold petal_width=0.2
    predlog reference build scored.csv --out churn.ref.npz --target churned \
        --probability p_churn            # + the rows CBPE is fitted on
    predlog reference build --mlflow-run RUN_ID --artifact data/train.parquet \\
        --tracking-uri http://127.0.0.1:15000 --out iris.ref.npz
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # pandas and scipy (through the profile) cost ~1 s: imported where used
    import pandas as pd

    from stream.drift.reference import ReferenceProfile

app = typer.Typer(help="Reference profiles for drift.", no_args_is_help=True)
console = Console(width=110)


@app.callback()
def reference() -> None:
    """Reference profiles for drift (build them once; workers and replay load them)."""


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV (also .csv.gz) or Parquet file as a DataFrame (Parquet by suffix or magic)."""
    import pandas as pd

    path = Path(path)
    with path.open("rb") as f:
        magic = f.read(4)
    if path.suffix.lower() in (".parquet", ".pq") or magic == b"PAR1":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def save_profile(profile: ReferenceProfile, path: Path) -> None:
    Path(path).write_bytes(profile.to_bytes())


def load_reference(path: Path, **roles) -> ReferenceProfile:
    """A built profile (`.npz`), or a CSV/Parquet file profiled with `roles`
    (`ReferenceProfile.from_frame` keyword arguments)."""
    from stream.drift.reference import ReferenceProfile

    path = Path(path)
    data = path.read_bytes()
    if data[:2] == b"PK":  # npz is a zip archive
        return ReferenceProfile.from_bytes(data)
    return ReferenceProfile.from_frame(read_frame(path), **roles)


def download_mlflow_artifact(run_id: str, artifact: str, tracking_uri: str | None,
                             dst: Path) -> Path:
    from mlflow import MlflowClient

    return Path(MlflowClient(tracking_uri=tracking_uri).download_artifacts(
        run_id, artifact, dst_path=str(dst)))


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _pairs(values: list[str] | None, option: str, convert=str) -> dict:
    out = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise typer.BadParameter(f"expected FEATURE=VALUE, got {item!r}", param_hint=option)
        try:
            out[name.strip()] = convert(value.strip())
        except ValueError:
            raise typer.BadParameter(f"bad value in {item!r}", param_hint=option) from None
    return out


def _print(profile: ReferenceProfile, out: Path) -> None:
    table = Table(title=f"reference profile {out} ({profile.rows} rows)")
    for col in ("column", "role", "kind", "values", "missing", "stattest", "threshold"):
        table.add_column(col)
    roles = [(c, "feature") for c in profile.features.values()]
    roles += [(c, r) for c, r in ((profile.prediction, "prediction"), (profile.target, "target"))
              if c is not None]
    for c, role in roles:
        limit = "default" if c.threshold is None else str(c.threshold)
        table.add_row(c.name, role, c.kind, str(c.n), str(c.missing + c.infinite),
                      c.stattest or "default", limit)
    console.print(table)
    if profile.scores is not None:
        s = profile.scores
        console.print(f"CBPE rows: {len(s.target)} (probability {s.probability_column}, "
                      f"{int(s.target.sum())} positive labels, "
                      f"{int(s.predicted.sum())} positive predictions)")
    for name, reason in profile.skipped.items():
        console.print(f"skipped {name}: {reason} (force a kind with --categorical/--numerical)")


@app.command()
def build(
    input: Annotated[Path | None, typer.Argument(help="CSV or Parquet reference data.")] = None,
    out: Annotated[Path, typer.Option(help="Profile file to write (.npz).")] = ...,
    features: Annotated[str | None, typer.Option(help="Feature columns a,b (default: all "
                                                 "but prediction and target).")] = None,
    prediction: Annotated[str | None, typer.Option(help="Prediction column.")] = None,
    target: Annotated[str | None, typer.Option(help="Target (label) column.")] = None,
    probability: Annotated[str | None, typer.Option(
        help="Positive-class probability column of a binary classifier (labels 0/1 in "
             "--target): keeps labels, probabilities and predicted classes for CBPE.")] = None,
    predicted: Annotated[str | None, typer.Option(
        help="Predicted class 0/1 column (default: probability > 0.5).")] = None,
    categorical: Annotated[str | None, typer.Option(help="Force categorical: a,b.")] = None,
    numerical: Annotated[str | None, typer.Option(help="Force numerical: a,b.")] = None,
    stattest: Annotated[list[str] | None, typer.Option(
        help="FEATURE=TEST (ks, chisquare, z, wasserstein, psi, kl_div, jensenshannon); "
             "repeatable.")] = None,
    threshold: Annotated[list[str] | None, typer.Option(
        help="FEATURE=THRESHOLD; repeatable.")] = None,
    mlflow_run: Annotated[str | None, typer.Option(help="MLflow run id holding the data.")] = None,
    artifact: Annotated[str | None, typer.Option(help="Artifact path in the MLflow run.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """Build a reference profile (column kinds, values, overrides) for drift."""
    from stream.drift.reference import ReferenceProfile

    if (input is None) == (mlflow_run is None):
        raise typer.BadParameter("give either INPUT or --mlflow-run with --artifact")
    if mlflow_run is not None and not artifact:
        raise typer.BadParameter("--mlflow-run needs --artifact", param_hint="--artifact")
    roles = dict(features=_names(features) or None, prediction=prediction, target=target,
                 categorical=_names(categorical), numerical=_names(numerical),
                 stattests=_pairs(stattest, "--stattest"),
                 thresholds=_pairs(threshold, "--threshold", float),
                 probability=probability, predicted=predicted)
    with tempfile.TemporaryDirectory() as tmp:
        if mlflow_run is not None:
            input = download_mlflow_artifact(mlflow_run, artifact, tracking_uri, Path(tmp))
        if not input.is_file():
            raise typer.BadParameter(f"no such file: {input}", param_hint="INPUT")
        try:
            profile = ReferenceProfile.from_frame(read_frame(input), **roles)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
    if mlflow_run is not None:  # window summaries name it (their "reference")
        profile.origin = {"source": "mlflow", "run_id": mlflow_run, "artifact": str(artifact)}
    save_profile(profile, out)
    _print(profile, out)
