"""Reference profiles: kinds as Evidently infers them, overrides, save/load, the CLI builder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from agents.reference_cli import app, load_reference
from stream.drift.reference import ReferenceProfile, infer_kind
from tests.fixtures.drift_data import FEATURES, frame

SERIES = {
    "float": pd.Series([0.1, 0.2, np.nan, 0.4]),
    "int_low": pd.Series(list(range(10)) * 3),
    "int_high": pd.Series(range(11)),
    "str_cat": pd.Series(["a", "b", "a", "b", None]),
    "str_text": pd.Series(["a", "b", "c", "a"]),
    "string_dtype": pd.Series(["a", "a", "b", "b"], dtype="string"),
    "bool": pd.Series([True, False, True]),
    "category": pd.Series(["x", "y", "x"], dtype="category"),
    "datetime": pd.Series(pd.to_datetime(["2026-01-01", "2026-01-02"])),
    "mixed_object": pd.Series([1, "a", 2.0], dtype=object),
    "all_none": pd.Series([None, None], dtype=object),
}


@pytest.mark.parametrize("name", list(SERIES))
def test_infer_kind_is_evidentlys(name):
    from evidently.core.datasets import infer_column_type

    theirs = infer_column_type(SERIES[name]).value
    theirs = {"num": "numerical", "cat": "categorical"}.get(theirs, theirs)
    assert infer_kind(SERIES[name]) == theirs


def profile_with_everything():
    df = frame(400, 7, shifted=False)
    df["text"] = [f"id-{i}" for i in range(len(df))]
    df["when"] = pd.Timestamp("2026-01-01")
    return df, ReferenceProfile.from_frame(
        df, prediction="pred", target="bin", categorical=["count"], numerical=["low_int"],
        stattests={"num": "psi", "cat": "jensenshannon"}, thresholds={"num": 0.2, "flag": 0.01})


def test_profile_columns_kinds_and_counts():
    df, p = profile_with_everything()
    assert list(p.features) == [c for c in df.columns if c not in ("pred", "bin", "text", "when")]
    assert p.skipped == {"text": "text", "when": "datetime"}
    assert p.features["count"].kind == "categorical" and p.features["low_int"].kind == "numerical"
    num = p.features["num"]
    assert num.missing == int(df["num"].isna().sum())
    assert num.infinite == int(np.isinf(df["num"]).sum())
    assert num.n + num.missing + num.infinite == len(df)
    assert np.array_equal(num.values, np.sort(df["num"][np.isfinite(df["num"])]))
    assert p.features["cat"].value_counts() == df["cat"].value_counts().to_dict()
    assert (p.prediction.name, p.target.name, p.rows) == ("pred", "bin", 400)


def test_save_load_round_trip():
    _, p = profile_with_everything()
    q = ReferenceProfile.from_bytes(p.to_bytes())
    assert (q.rows, q.skipped, list(q.features)) == (p.rows, p.skipped, list(p.features))
    for a, b in zip([*p.features.values(), p.prediction, p.target],
                    [*q.features.values(), q.prediction, q.target], strict=True):
        assert (a.name, a.kind, a.missing, a.infinite, a.stattest, a.threshold) == \
               (b.name, b.kind, b.missing, b.infinite, b.stattest, b.threshold)
        if a.kind == "numerical":
            assert np.array_equal(a.values, b.values)
        else:
            assert a.value_counts() == b.value_counts()
            assert [type(c) for c in a.categories] == [type(c) for c in b.categories]


@pytest.mark.parametrize("kwargs, message", [
    ({"features": ["nope"]}, "not in the reference"),
    ({"stattests": {"num": "t_test"}}, "unknown stattest"),
    ({"stattests": {"cat": "ks"}}, "does not apply"),
    ({"stattests": {"num": "chisquare"}}, "does not apply"),
    ({"thresholds": {"num": -1}}, "threshold"),
    ({"categorical": ["num"], "numerical": ["num"]}, "both"),
    ({"numerical": ["cat"]}, "not numeric"),
])
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReferenceProfile.from_frame(frame(50, 1, shifted=False), **kwargs)


def test_not_a_profile():
    import io

    buf = io.BytesIO()
    np.savez(buf, header=np.array('{"format": "other/1"}'))
    with pytest.raises(ValueError, match="not a predlog reference profile"):
        ReferenceProfile.from_bytes(buf.getvalue())


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_build(tmp_path, suffix):
    df = frame(300, 3, shifted=False)
    src = tmp_path / f"train{suffix}"
    df.to_csv(src, index=False) if suffix == ".csv" else df.to_parquet(src)
    out = tmp_path / "ref.npz"
    result = CliRunner().invoke(app, [
        "build", str(src), "--out", str(out), "--features", ",".join(FEATURES),
        "--prediction", "pred", "--target", "score", "--categorical", "count",
        "--stattest", "num=psi", "--stattest", "cat=jensenshannon", "--threshold", "num=0.2"])
    assert result.exit_code == 0, result.output
    p = load_reference(out)
    assert list(p.features) == FEATURES and p.prediction.name == "pred"
    assert (p.features["num"].stattest, p.features["num"].threshold) == ("psi", 0.2)
    assert p.features["count"].kind == "categorical"
    assert p.features["bin_str"].value_counts() == df["bin_str"].value_counts().to_dict()
    # the raw file gives the same profile as the built one
    assert load_reference(src, prediction="pred").features["num"].n == p.features["num"].n


@pytest.mark.parametrize("args, message", [
    (["--stattest", "num"], "FEATURE=VALUE"),
    (["--threshold", "num=abc"], "bad value"),
    (["--stattest", "cat=ks"], "does not apply"),
])
def test_cli_rejects_bad_options(tmp_path, args, message):
    src = tmp_path / "train.csv"
    frame(50, 3, shifted=False).to_csv(src, index=False)
    result = CliRunner().invoke(app, ["build", str(src), "--out", str(tmp_path / "r.npz"), *args])
    assert result.exit_code != 0 and message in result.output


def test_cli_build_from_mlflow_artifact(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    src = tmp_path / "train.parquet"
    frame(200, 3, shifted=False).to_parquet(src)
    mlflow.set_tracking_uri(uri)
    try:
        exp = mlflow.create_experiment("ref", artifact_location=(tmp_path / "art").as_uri())
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.log_artifact(str(src), artifact_path="data")
    finally:
        mlflow.set_tracking_uri(None)
    out = tmp_path / "ref.npz"
    result = CliRunner().invoke(app, [
        "build", "--mlflow-run", run.info.run_id, "--artifact", "data/train.parquet",
        "--tracking-uri", uri, "--out", str(out), "--prediction", "pred"])
    assert result.exit_code == 0, result.output
    profile = load_reference(out)
    assert profile.prediction.name == "pred"
    # window summaries compared with it name it: {"source": "mlflow", ...}
    assert profile.origin == {"source": "mlflow", "run_id": run.info.run_id,
                              "artifact": "data/train.parquet"}
