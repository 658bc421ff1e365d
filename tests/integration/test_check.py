"""`predlog check` against the real stack: everything configured right passes; one failure of
each kind (wrong Kafka password on the SASL listener, a missing topic, a partition count that
is not PREDLOG_PARTITIONS, Elasticsearch and MLflow on ports nobody listens on, a missing and an
unparsable reference file) gives a FAIL line naming what to fix, and a non-zero exit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from agents.check import Check, run_checks
from agents.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 2


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: connections are refused


@pytest.fixture(scope="module")
def setup(stack, tmp_path_factory):
    """Unique topics with PARTITIONS partitions, a reference CSV, and the environment of a
    worker configured for the SASL listener, Elasticsearch, MLflow and that reference."""
    token = uuid.uuid4().hex[:10]
    topics = {k: f"check-{token}-{k}" for k in ("events", "labels", "windows", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap, request_timeout_ms=20000)
    try:
        admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics.values()])
    finally:
        admin.close()
    ref = tmp_path_factory.mktemp("check") / "iris.csv"
    ref.write_text("sepal_length,sepal_width,petal_length\n"
                   + "".join(f"{5 + i * 0.1:.1f},{3 + i * 0.05:.2f},{1 + i * 0.2:.1f}\n"
                             for i in range(40)))
    env = {"PREDLOG_KAFKA_BOOTSTRAP": stack.kafka_sasl_bootstrap,
           "PREDLOG_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
           "PREDLOG_KAFKA_SASL_MECHANISM": "PLAIN",
           "PREDLOG_KAFKA_USERNAME": "predlog",
           "PREDLOG_KAFKA_PASSWORD": stack.kafka_sasl_password(),
           "PREDLOG_PARTITIONS": str(PARTITIONS),
           **{f"PREDLOG_TOPIC_{k.upper()}": t for k, t in topics.items()},
           "PREDLOG_ELASTICSEARCH_URL": stack.elasticsearch_url,
           "PREDLOG_MLFLOW_TRACKING_URI": stack.mlflow_url,
           "PREDLOG_REFERENCES": f"iris={ref}"}
    return {"env": env, "topics": topics, "ref": ref, "tmp": ref.parent}


def _settings(env: dict[str, str], **changes: str) -> Settings:
    values = {**env, **changes}
    fields = {k[len("PREDLOG_"):].lower(): v for k, v in values.items()}
    return Settings(**fields)


def _check(monkeypatch, env, **changes) -> list[Check]:
    # run_checks sets the MLflow client's retry/timeout variables: restore them afterwards
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return run_checks(_settings(env, **changes))


def _failed(results: list[Check]) -> list[Check]:
    return [r for r in results if r.status == "FAIL"]


def test_check_passes_on_the_configured_stack_and_exits_zero(setup):
    proc = subprocess.run([sys.executable, "-m", "agents.cli", "check"], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **setup["env"]},
                          capture_output=True, text=True, timeout=180)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    body, summary = lines[:-1], lines[-1]
    assert all(line.startswith("ok ") for line in body), proc.stdout
    assert summary == f"all {len(body)} checks passed"
    text = proc.stdout
    assert "kafka: connected (SASL_PLAINTEXT PLAIN as predlog)" in text
    for topic in setup["topics"].values():
        assert f"kafka: topic {topic} exists, {PARTITIONS} partitions" in text
    assert "elasticsearch: index templates predlog-predictions, predlog-windows installed" in text
    assert "mlflow: can create and read experiments" in text
    assert (f"reference for iris: {setup['ref']}, 40 rows, 3 features "
            "(sepal_length, sepal_width, petal_length)") in text
    assert setup["env"]["PREDLOG_KAFKA_PASSWORD"] not in proc.stdout + proc.stderr


def test_wrong_kafka_password_fails_the_handshake(setup, monkeypatch):
    started = time.monotonic()
    results = _check(monkeypatch, setup["env"], PREDLOG_KAFKA_PASSWORD="not-the-password")
    [fail] = _failed(results)
    assert fail.what.startswith("kafka: handshake (SASL_PLAINTEXT PLAIN as predlog) failed: "
                                "Connection lost")  # the broker hung up on the wrong password
    assert "PREDLOG_KAFKA_PASSWORD" in fail.fix
    assert "not-the-password" not in fail.line()
    assert time.monotonic() - started < 60


def test_missing_topic_and_wrong_partition_count(setup, monkeypatch):
    missing = f"{setup['topics']['dlq']}-missing"
    results = _check(monkeypatch, setup["env"], PREDLOG_TOPIC_DLQ=missing, PREDLOG_PARTITIONS="3")
    fails = {r.what: r.fix for r in _failed(results)}
    no_topic = f"kafka: topic {missing} does not exist"
    wrong_count = (f"kafka: topic {setup['topics']['events']} has {PARTITIONS} partitions, "
                   "PREDLOG_PARTITIONS=3")
    assert set(fails) == {no_topic, wrong_count}
    assert f"--create --topic {missing} --partitions 3" in fails[no_topic]
    assert fails[wrong_count].startswith(f"set PREDLOG_PARTITIONS={PARTITIONS} ")


def test_unreachable_kafka_bootstrap(setup, monkeypatch):
    port = _dead_port()
    [fail] = _failed(_check(monkeypatch, setup["env"],
                            PREDLOG_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}"))
    assert fail.what.startswith(f"kafka: 127.0.0.1:{port} unreachable")
    assert "PREDLOG_KAFKA_BOOTSTRAP" in fail.fix


def test_unreachable_elasticsearch(setup, monkeypatch):
    url = f"http://127.0.0.1:{_dead_port()}"
    [fail] = _failed(_check(monkeypatch, setup["env"], PREDLOG_ELASTICSEARCH_URL=url))
    assert fail.what.startswith(f"elasticsearch: {url} unreachable")
    assert "PREDLOG_ELASTICSEARCH_URL" in fail.fix


def test_unreachable_mlflow(setup, monkeypatch):
    url = f"http://127.0.0.1:{_dead_port()}"
    started = time.monotonic()
    [fail] = _failed(_check(monkeypatch, setup["env"], PREDLOG_MLFLOW_TRACKING_URI=url))
    assert fail.what.startswith(f"mlflow: {url} unreachable")
    assert "PREDLOG_MLFLOW_TRACKING_URI" in fail.fix
    assert time.monotonic() - started < 60  # no minutes of client retries


def test_missing_and_unparsable_reference_files(setup, monkeypatch):
    missing = setup["tmp"] / "missing.csv"
    garbage = setup["tmp"] / "garbage.parquet"
    garbage.write_bytes(b"\x00\x01 not a parquet file")
    results = _check(monkeypatch, setup["env"],
                     PREDLOG_REFERENCES=f"iris={setup['ref']},a={missing},b={garbage}")
    fails = {r.what: r.fix for r in _failed(results)}
    assert set(fails) == {f"reference for a: {missing} is not a readable file",
                          *[w for w in fails if w.startswith(f"reference for b: {garbage} does "
                                                             "not load")]}
    assert len(fails) == 2
    assert any(r.status == "ok" and r.what.startswith("reference for iris:") for r in results)


def test_cli_exits_non_zero_on_a_failure(setup):
    env = {**os.environ, "PYTHONPATH": str(REPO), **setup["env"],
           "PREDLOG_ELASTICSEARCH_URL": f"http://127.0.0.1:{_dead_port()}"}
    proc = subprocess.run([sys.executable, "-m", "agents.cli", "check"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("1 of ")
    assert any(line.startswith("FAIL  elasticsearch:") and "→ fix:" in line
               for line in proc.stdout.splitlines())
