"""The container image builds here with buildah (deploy/image/build.sh: debootstrap base, no
registry pulls) and runs predlog as a non-root user. Slow (minutes, GBs of vfs storage):
marked `image`, deselected by default; run with `make image-test` / `pytest -m image`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.deploy.conftest import DEPLOY, require_tool

pytestmark = pytest.mark.image
IMAGE = os.environ.get("PREDLOG_IMAGE", "localhost/predlog:test")
BUILDAH = ["buildah", "--storage-driver", "vfs"]


@pytest.fixture(scope="module")
def image() -> str:
    require_tool("buildah")
    require_tool("debootstrap")
    env = {**os.environ, "PREDLOG_IMAGE": IMAGE}
    proc = subprocess.run([str(DEPLOY / "image" / "build.sh"), "--no-smoke"], env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return IMAGE


def _run(image: str, *cmd: str) -> subprocess.CompletedProcess:
    ctr = subprocess.run([*BUILDAH, "from", "--pull=never", image], capture_output=True,
                         text=True, check=True).stdout.strip()
    try:
        return subprocess.run([*BUILDAH, "run", "--isolation", "chroot", "--user", "10001:10001",
                               ctr, "--", *cmd], capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run([*BUILDAH, "rm", ctr], capture_output=True)


def test_image_config(image):
    info = json.loads(subprocess.run([*BUILDAH, "inspect", "--type", "image", image],
                                     capture_output=True, text=True, check=True).stdout)
    config = info["OCIv1"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["predlog"]
    assert {"6066/tcp", "8085/tcp"} <= set(config["ExposedPorts"])
    assert config["WorkingDir"] == "/var/lib/predlog"


def test_predlog_help_runs_as_non_root(image):
    proc = _run(image, "id", "-u")
    assert proc.stdout.strip() == "10001", proc.stderr
    proc = _run(image, "predlog", "--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("replay", "ingest"):
        assert command in proc.stdout


def test_predlog_replay_of_the_bundled_sample(image):
    proc = _run(image, "predlog", "replay")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "358 log lines" in proc.stdout
    assert "dead letters: 2" in proc.stdout


def test_no_build_tools_or_pip_in_the_runtime(image):
    proc = _run(image, "sh", "-c", "command -v gcc cargo rustc || true; "
                "ls /opt/predlog/bin/pip 2>&1 || true")
    for tool in ("gcc", "cargo", "rustc"):
        assert tool not in proc.stdout
    assert "No such file" in proc.stdout


def test_the_compiled_decoder_is_in_the_image(image):
    """Built in the build stage (Rust toolchain there only), decoding in the runtime."""
    proc = _run(image, "/opt/predlog/bin/python", "-c",
                "from stream.decode.kafka_records import decode_kafka_record as d; "
                "print(type(d).__name__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "builtin_function_or_method"
