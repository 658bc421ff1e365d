"""MLflow with its basic-auth app (`mlflow server --app-name basic-auth`) over HTTPS, started
here by `deploy/stack/mlflow.sh` (PREDLOG_STACK_MLFLOW_AUTH=basic, PREDLOG_STACK_MLFLOW_TLS=1:
a certificate signed by a CA the script makes) on a free port with its own state directory;
the shared server is not reconfigured.

The right password: the sink `make_mlflow_sink` builds from Settings (credentials from
`PREDLOG_MLFLOW_TRACKING_USERNAME` and `..._PASSWORD_FILE`) writes a window's run. A wrong
one: a clear error naming the settings at start-up, a worker that exits instead of
retrying, and a password revoked while running is not retried either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from mlflow.exceptions import MlflowException

from agents.mlflow_auth import MlflowRefused
from agents.settings import Settings
from agents.worker import make_mlflow_sink
from stream.window_summary import WindowSummary
from tests.integration.workers import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "stack" / "mlflow.sh"
MLFLOW_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
              "MLFLOW_TRACKING_SERVER_CERT_PATH")


@dataclass(frozen=True)
class AuthMlflow:
    url: str
    admin: tuple[str, str]
    ca_file: str

    def create_user(self, name: str, password: str) -> None:
        r = requests.post(f"{self.url}/api/2.0/mlflow/users/create", auth=self.admin,
                          json={"username": name, "password": password}, timeout=30,
                          verify=self.ca_file)
        r.raise_for_status()

    def set_password(self, name: str, password: str) -> None:
        r = requests.patch(f"{self.url}/api/2.0/mlflow/users/update-password", auth=self.admin,
                           json={"username": name, "password": password}, timeout=30,
                           verify=self.ca_file)
        r.raise_for_status()


@pytest.fixture(scope="module")
def auth_mlflow():
    state = Path(tempfile.mkdtemp(prefix="predlog-mlflow-auth-"))
    port = free_port()
    env = {**os.environ, "PREDLOG_STACK_DIR": str(state), "PREDLOG_STACK_MLFLOW_PORT": str(port),
           "PREDLOG_STACK_MLFLOW_AUTH": "basic", "PREDLOG_STACK_MLFLOW_TLS": "1",
           "PREDLOG_VENV": os.environ.get("PREDLOG_VENV", str(Path(sys.executable).parents[1]))}
    try:
        subprocess.run(["bash", str(SCRIPT), "start"], env=env, check=True, timeout=300,
                       capture_output=True)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"MLflow basic-auth did not start: {exc.stderr.decode(errors='replace')}")
    try:
        password = (state / "mlflow" / "admin-password").read_text().strip()
        yield AuthMlflow(f"https://127.0.0.1:{port}", ("admin", password),
                         str(state / "mlflow" / "ca.crt"))
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def mlflow_env(monkeypatch):
    """MLflow's client variables are restored after the test (the sink factory sets them)."""
    for name in MLFLOW_ENV:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def _settings(server: AuthMlflow, user: str, password_file: Path, ca: bool = True) -> Settings:
    return Settings(mlflow_tracking_uri=server.url, mlflow_tracking_username=user,
                    mlflow_tracking_password_file=str(password_file),
                    mlflow_ca_file=server.ca_file if ca else None)


def _summary(model: str) -> WindowSummary:
    return WindowSummary.from_builtins({
        "model": model, "version": "v1", "namespace": "it", "node": "clf",
        "window_start": "2026-09-21T00:00:00Z", "window_end": "2026-09-21T00:05:00Z",
        "requests": 10, "rows": 10, "predictions": 10, "errors": 0,
        "latency_seconds": {"p50": 0.1, "p95": 0.2, "p99": 0.3, "mean": 0.12, "max": 0.3}})


def test_right_password_runs_land(auth_mlflow, mlflow_env, tmp_path):
    user, password = f"predlog-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    auth_mlflow.create_user(user, password)
    (tmp_path / "pw").write_text(password + "\n")
    sink = make_mlflow_sink(_settings(auth_mlflow, user, tmp_path / "pw"))
    model = f"auth-{uuid.uuid4().hex[:6]}"
    sink.add(_summary(model))
    assert sink.flush() == 1
    r = requests.get(f"{auth_mlflow.url}/api/2.0/mlflow/experiments/get-by-name",
                     params={"experiment_name": f"{model}-production-monitoring"},
                     auth=auth_mlflow.admin, timeout=30, verify=auth_mlflow.ca_file)
    exp_id = r.json()["experiment"]["experiment_id"]
    runs = requests.post(f"{auth_mlflow.url}/api/2.0/mlflow/runs/search",
                         json={"experiment_ids": [exp_id]}, auth=auth_mlflow.admin,
                         timeout=30, verify=auth_mlflow.ca_file).json()["runs"]
    assert len(runs) == 1
    metrics = {m["key"]: m["value"] for m in runs[0]["data"]["metrics"]}
    assert metrics["latency_p95"] == 0.2 and metrics["requests"] == 10


def test_wrong_password_fails_fast_naming_the_settings(auth_mlflow, mlflow_env, tmp_path):
    user = f"predlog-{uuid.uuid4().hex[:6]}"
    auth_mlflow.create_user(user, uuid.uuid4().hex)
    (tmp_path / "pw").write_text("not-the-password")
    t = time.monotonic()
    with pytest.raises(MlflowRefused) as info:
        make_mlflow_sink(_settings(auth_mlflow, user, tmp_path / "pw"))
    assert time.monotonic() - t < 10
    assert ("refused the credentials in PREDLOG_MLFLOW_TRACKING_USERNAME/PASSWORD"
            in str(info.value)) and "(401)" in str(info.value)
    assert "not-the-password" not in str(info.value)


def test_a_worker_with_a_wrong_password_exits_with_the_reason(stack, auth_mlflow, tmp_path):
    (tmp_path / "pw").write_text("wrong-again")
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "PREDLOG_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
           "PREDLOG_CONSUMER_GROUP": f"it-mlauth-{uuid.uuid4().hex[:8]}",
           "PREDLOG_ELASTICSEARCH_URL": "", "PREDLOG_MLFLOW_TRACKING_URI": auth_mlflow.url,
           "PREDLOG_MLFLOW_TRACKING_USERNAME": "predlog",
           "PREDLOG_MLFLOW_TRACKING_PASSWORD_FILE": str(tmp_path / "pw"),
           "PREDLOG_MLFLOW_CA_FILE": auth_mlflow.ca_file,
           "PREDLOG_PROMETHEUS_PORT": str(free_port()), "PREDLOG_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "agents.cli", "worker"], env=env,
                         capture_output=True, timeout=120, cwd=tmp_path)
    text = (out.stdout + out.stderr).decode(errors="replace")
    assert out.returncode == 2, text[-3000:]
    assert "PREDLOG_MLFLOW_TRACKING_USERNAME/PASSWORD" in text and "(401)" in text
    assert "wrong-again" not in text


def test_a_password_revoked_while_running_is_not_retried(auth_mlflow, mlflow_env, tmp_path):
    user, password = f"predlog-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    auth_mlflow.create_user(user, password)
    (tmp_path / "pw").write_text(password)
    sink = make_mlflow_sink(_settings(auth_mlflow, user, tmp_path / "pw"))
    auth_mlflow.set_password(user, uuid.uuid4().hex)
    sink.add(_summary(f"revoked-{uuid.uuid4().hex[:6]}"))
    t = time.monotonic()
    try:
        written = sink.flush()
    except MlflowException as exc:  # permanent: raised at once, not retried
        assert exc.get_http_status_code() == 401
    else:  # a sink that sets refused windows aside for the dead-letter topic
        assert written == 0 and len(sink.take_rejected()) == 1
    assert time.monotonic() - t < 15


def test_without_the_ca_tls_fails_naming_the_ca_setting(auth_mlflow, mlflow_env, tmp_path):
    user, password = f"predlog-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    auth_mlflow.create_user(user, password)
    (tmp_path / "pw").write_text(password)
    with pytest.raises(MlflowRefused, match="PREDLOG_MLFLOW_CA_FILE"):
        make_mlflow_sink(_settings(auth_mlflow, user, tmp_path / "pw", ca=False))


def test_predlog_check_uses_the_same_credentials(auth_mlflow, mlflow_env, tmp_path):
    from agents.check import check_mlflow

    user, password = f"predlog-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    auth_mlflow.create_user(user, password)
    (tmp_path / "pw").write_text(password)
    assert [c.status for c in check_mlflow(_settings(auth_mlflow, user, tmp_path / "pw"))] == [
        "ok", "ok"]
    (tmp_path / "wrong").write_text("nope")
    [failed] = list(check_mlflow(_settings(auth_mlflow, user, tmp_path / "wrong")))
    assert failed.status == "FAIL" and "PREDLOG_MLFLOW_TRACKING_PASSWORD" in failed.fix
