"""Fixtures for the deploy tests (Dockerfile, kustomize, rules, dashboards, Alertmanager).

Tools come from deploy/tools/ensure-tools.sh (kubectl, promtool, amtool, buildah,
debootstrap); a missing tool fails the test with that hint rather than skipping it.
Markers: `image` (the slow container build, deselected unless asked for: `-m image` or
PREDLOG_IMAGE_TEST=1) and `integration` (the dashboard queries against the real stack).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
CRDS = REPO.parent / "shared" / "crds"


def pytest_configure(config):
    # Registered here too so the folder works before pyproject.toml lists the marker.
    config.addinivalue_line("markers", "image: builds the container image (slow; make image-test)")


def pytest_collection_modifyitems(config, items):
    wants_image = "image" in (config.getoption("-m") or "") and "not image" not in (
        config.getoption("-m") or "")
    if wants_image or os.environ.get("PREDLOG_IMAGE_TEST") == "1":
        return
    skip = pytest.mark.skip(reason="image build: run with -m image (make image-test)")
    for item in items:
        if "image" in item.keywords:
            item.add_marker(skip)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run deploy/tools/ensure-tools.sh")
    return path


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    require_tool(cmd[0])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 120),
                          **kw)


_rendered: dict[str, list[dict]] = {}


def render(path: Path) -> list[dict]:
    """`kubectl kustomize PATH` as a list of objects (cached per path)."""
    key = str(path)
    if key not in _rendered:
        proc = run(["kubectl", "kustomize", str(path)])
        assert proc.returncode == 0, proc.stderr
        _rendered[key] = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return _rendered[key]


@dataclass(frozen=True)
class StackEndpoints:
    prometheus_url: str
    alertmanager_url: str
    stack_dir: str


@pytest.fixture(scope="session")
def stack() -> StackEndpoints:
    """The local stack's endpoints (copy of tests/integration/conftest.py's, same variables)."""
    def port(name: str, default: int) -> int:
        return int(os.environ.get(f"PREDLOG_STACK_{name}_PORT", default))
    return StackEndpoints(
        prometheus_url=f"http://127.0.0.1:{port('PROMETHEUS', 19090)}",
        alertmanager_url=f"http://127.0.0.1:{port('ALERTMANAGER', 19093)}",
        stack_dir=os.environ.get("PREDLOG_STACK_DIR", str(REPO / ".stack")),
    )
