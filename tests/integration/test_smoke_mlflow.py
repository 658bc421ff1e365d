"""Smoke test: a run logged to the local MLflow server reads back intact.

Needs `deploy/stack/stack.sh up mlflow`. Artifacts go through the server's proxied
artifact store (mlflow-artifacts:/), so nothing is written next to the test.
"""

from __future__ import annotations

import os
import uuid

import pytest
import requests

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402


def test_mlflow_run_round_trip(stack, tmp_path):
    try:
        requests.get(f"{stack.mlflow_url}/health", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(
            f"MLflow not reachable at {stack.mlflow_url} ({exc}); "
            "run deploy/stack/stack.sh up mlflow"
        )

    token = uuid.uuid4().hex[:12]
    client = MlflowClient(tracking_uri=stack.mlflow_url)

    exp_name = f"predlog-smoke-{token}"
    exp_id = client.create_experiment(exp_name)
    exp = client.get_experiment_by_name(exp_name)
    assert exp is not None and exp.experiment_id == exp_id
    assert exp.artifact_location.startswith("mlflow-artifacts:")

    run = client.create_run(exp_id, tags={"predlog.smoke": token}, run_name=f"smoke-{token}")
    run_id = run.info.run_id

    client.log_param(run_id, "model", "baseline")
    client.log_metric(run_id, "accuracy", 0.91, step=0)
    client.log_metric(run_id, "accuracy", 0.93, step=1)
    client.log_batch(
        run_id,
        metrics=[Metric("latency_p99_ms", 12.5, 0, 0)],
        params=[Param("window", "60s")],
        tags=[RunTag("stage", "smoke")],
    )
    client.set_tag(run_id, "source", "tests/integration")

    src = tmp_path / "upload" / "notes.txt"
    src.parent.mkdir()
    src.write_text(f"predlog smoke {token}\n")
    client.log_artifact(run_id, str(src), artifact_path="reports")
    client.set_terminated(run_id, status="FINISHED")

    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.experiment_id == exp_id
    assert got.data.params == {"model": "baseline", "window": "60s"}
    assert got.data.metrics == {"accuracy": 0.93, "latency_p99_ms": 12.5}
    assert got.data.tags["predlog.smoke"] == token
    assert got.data.tags["stage"] == "smoke"
    assert got.data.tags["source"] == "tests/integration"
    history = client.get_metric_history(run_id, "accuracy")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.91), (1, 0.93)]

    found = client.search_runs([exp_id], filter_string=f"tags.`predlog.smoke` = '{token}'")
    assert [r.info.run_id for r in found] == [run_id]
    assert client.search_runs([exp_id], filter_string="tags.`predlog.smoke` = 'nope'") == []

    listed = client.list_artifacts(run_id, "reports")
    assert [(a.path, a.is_dir) for a in listed] == [("reports/notes.txt", False)]
    dst = tmp_path / "download"
    dst.mkdir()
    local = client.download_artifacts(run_id, "reports/notes.txt", str(dst))
    assert os.path.basename(local) == "notes.txt"
    with open(local) as fh:
        assert fh.read() == f"predlog smoke {token}\n"

    # The file really went through the server's proxied store.
    stored = os.path.join(stack.stack_dir, "mlflow", "artifacts")
    assert any("notes.txt" in files for _, _, files in os.walk(stored))

    client.delete_experiment(exp_id)
