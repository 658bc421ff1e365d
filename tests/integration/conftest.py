"""Fixtures for tests against the local real stack (`predlog stack up`).

Endpoints default to deploy/stack/lib.sh's ports and can be moved with the same
PREDLOG_STACK_* variables. Every test in this folder is marked `integration`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest


@dataclass(frozen=True)
class StackEndpoints:
    kafka_bootstrap: str
    elasticsearch_url: str
    prometheus_url: str
    alertmanager_url: str
    mlflow_url: str
    alert_webhook_port: int
    stack_dir: str
    kafka_sasl_bootstrap: str = ""  # SASL_PLAINTEXT, PLAIN, user predlog

    def kafka_sasl_password(self) -> str:
        """The stack's generated password of the SASL user `predlog` (deploy/stack/kafka.sh)."""
        return open(os.path.join(self.stack_dir, "kafka", "sasl-password")).read().strip()


def _port(name: str, default: int) -> int:
    return int(os.environ.get(f"PREDLOG_STACK_{name}_PORT", default))


@pytest.fixture(scope="session")
def stack() -> StackEndpoints:
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return StackEndpoints(
        kafka_bootstrap=f"127.0.0.1:{_port('KAFKA', 19092)}",
        elasticsearch_url=f"http://127.0.0.1:{_port('ES', 19200)}",
        prometheus_url=f"http://127.0.0.1:{_port('PROMETHEUS', 19090)}",
        alertmanager_url=f"http://127.0.0.1:{_port('ALERTMANAGER', 19093)}",
        mlflow_url=f"http://127.0.0.1:{_port('MLFLOW', 15000)}",
        alert_webhook_port=int(urlsplit(os.environ.get(
            "PREDLOG_STACK_ALERT_WEBHOOK_URL", "http://127.0.0.1:19095/alerts")).port or 19095),
        stack_dir=os.environ.get("PREDLOG_STACK_DIR", os.path.join(repo, ".stack")),
        kafka_sasl_bootstrap=f"127.0.0.1:{_port('KAFKA_SASL', 19096)}",
    )


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.integration)
