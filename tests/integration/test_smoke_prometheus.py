"""Smoke test: the local Prometheus scrapes a file_sd target and answers queries.

Needs `deploy/stack/stack.sh up prometheus`.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

DEADLINE_S = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_up(url: str) -> None:
    try:
        requests.get(f"{url}/-/ready", timeout=3).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(
            f"Prometheus not reachable at {url} ({exc}); run deploy/stack/stack.sh up prometheus"
        )


def test_prometheus_scrapes_file_sd_target(stack):
    _require_up(stack.prometheus_url)

    token = uuid.uuid4().hex[:12]
    registry = CollectorRegistry()
    gauge = Gauge(
        "predlog_smoke_value",
        "Smoke-test gauge for the local Prometheus.",
        ["smoke_id"],
        registry=registry,
    )
    gauge.labels(smoke_id=token).set(42.5)

    port = _free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)

    targets_dir = os.path.join(stack.stack_dir, "prometheus", "targets")
    os.makedirs(targets_dir, exist_ok=True)
    target_file = os.path.join(targets_dir, f"smoke-{token}.json")
    tmp_file = target_file + ".tmp"
    with open(tmp_file, "w") as fh:
        json.dump([{"targets": [f"127.0.0.1:{port}"], "labels": {"smoke_run": token}}], fh)
    os.replace(tmp_file, target_file)  # atomic: Prometheus never reads a half-written file

    query = f'predlog_smoke_value{{smoke_id="{token}"}}'
    last = None
    try:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            resp = requests.get(
                f"{stack.prometheus_url}/api/v1/query", params={"query": query}, timeout=5
            )
            resp.raise_for_status()
            last = resp.json()
            assert last["status"] == "success"
            result = last["data"]["result"]
            if result:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"{query} did not show up within {DEADLINE_S}s; last answer: {last}")

        assert len(result) == 1
        sample = result[0]
        assert float(sample["value"][1]) == 42.5
        labels = sample["metric"]
        assert labels["__name__"] == "predlog_smoke_value"
        assert labels["smoke_id"] == token
        assert labels["smoke_run"] == token  # label from the file_sd target file
        assert labels["job"] == "predlog"
        assert labels["instance"] == f"127.0.0.1:{port}"
    finally:
        os.remove(target_file)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
