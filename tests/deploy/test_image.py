"""The container image builds here with buildah (deploy/image/build.sh: debootstrap base, no
registry pulls) and runs predlog as a non-root user. Slow (minutes, GBs of vfs storage):
marked `image`, deselected by default; run with `make image-test` / `pytest -m image`.
PREDLOG_IMAGE_REUSE=1 tests an already built $PREDLOG_IMAGE instead of building it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from packaging.utils import canonicalize_name

from tests.deploy.conftest import DEPLOY, require_tool
from tests.deploy.test_dependencies import DEV_ONLY, lock

pytestmark = pytest.mark.image
IMAGE = os.environ.get("PREDLOG_IMAGE", "localhost/predlog:test")
BUILDAH = ["buildah", "--storage-driver", "vfs"]
MAX_SIZE = 500 * 1000**2  # bytes, uncompressed (issue 17: from 1.34 GB)


@pytest.fixture(scope="module")
def image() -> str:
    require_tool("buildah")
    if os.environ.get("PREDLOG_IMAGE_REUSE") == "1" and subprocess.run(
            [*BUILDAH, "inspect", "--type", "image", IMAGE], capture_output=True).returncode == 0:
        return IMAGE
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
    proc = _run(image, "sh", "-c", "command -v gcc cargo rustc apt-get perl || true; "
                "ls /opt/predlog/bin/pip 2>&1 || true")
    for tool in ("gcc", "cargo", "rustc", "apt-get", "perl"):
        assert tool not in proc.stdout
    assert "No such file" in proc.stdout


def test_the_compiled_decoder_is_in_the_image(image):
    """Built in the build stage (Rust toolchain there only), decoding in the runtime: the
    record and batch decoders are the compiled ones."""
    proc = _run(image, "/opt/predlog/bin/python", "-c",
                "from stream.decode import native; print(native.enabled(), "
                "type(native.new_decoder()).__name__, type(native.new_batch_decoder()).__name__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True Decoder BatchDecoder"


def test_the_image_is_slim(image):
    """Uncompressed: the sum of the layers as stored (tar, not gzip: the manifest's sizes)."""
    info = json.loads(subprocess.run([*BUILDAH, "inspect", "--type", "image", image],
                                     capture_output=True, text=True, check=True).stdout)
    layers = json.loads(info["Manifest"])["layers"]
    assert {layer["mediaType"] for layer in layers} == {"application/vnd.oci.image.layer.v1.tar"}
    size = sum(layer["size"] for layer in layers)
    assert size <= MAX_SIZE, f"{size / 1e6:.0f} MB"


def test_the_image_holds_the_locked_runtime_set_only(image):
    """Every distribution in the venv at its constraints.txt pin; none of the dev-only ones
    (evidently and its plotly/statsmodels, the full mlflow and its pyarrow), no pip."""
    proc = _run(image, "/opt/predlog/bin/python", "-c",
                "import importlib.metadata as m; "
                "print('\\n'.join(f\"{d.metadata['Name']}=={d.version}\" "
                "for d in m.distributions()))")
    assert proc.returncode == 0, proc.stderr
    pins = lock()
    installed = {}
    for line in proc.stdout.split():
        name, _, version = line.partition("==")
        installed[canonicalize_name(name)] = version
    own = {"predlog", "predlog-native"}
    assert {name: version for name, version in installed.items()
            if name not in own and pins.get(name) != version} == {}
    assert not set(installed) & (DEV_ONLY | {"pip", "setuptools"})
    assert {"mlflow-skinny", "scipy", "numpy"} <= set(installed) and own <= set(installed)


def test_worker_and_ingest_start_from_byte_code(image):
    """The root filesystem is read-only at run time: what the worker and ingest import must
    come with its .pyc (compiled in the build), not be compiled from source at each start."""
    proc = _run(image, "/opt/predlog/bin/python", "-v", "-c",
                "import agents.worker, agents.ingest, sinks.mlflow_sink, sinks.elasticsearch")
    assert proc.returncode == 0, proc.stderr[-3000:]
    from_source = [line for line in proc.stderr.splitlines()
                   if line.startswith("# code object from /opt/predlog/") and
                   line.endswith(".py")]
    assert from_source == []
    assert "# code object from '/opt/predlog/" in proc.stderr


def test_reports_name_the_missing_evidently(image):
    """Evidently is not in the image: a replay asked for reports refuses, naming it."""
    proc = _run(image, "predlog", "replay", "--reports", "1", "--out", "/tmp/replay")
    assert proc.returncode == 2
    assert "evidently" in proc.stdout + proc.stderr
    assert "predlog[reports]" in proc.stdout + proc.stderr


def test_every_shared_library_resolves(image):
    """The runtime root is pruned (no apt, perl, iconv modules): every shared object of the
    venv and of Python's lib-dynload still finds its libraries. (One vendored library of
    scipy's wheel names a sibling it gets from the loader: those must be in a *.libs/.)"""
    proc = _run(image, "sh", "-c",
                "find /opt/predlog /usr/lib/python3.11/lib-dynload -name '*.so*' -type f "
                "-exec ldd {} + | grep 'not found'; "
                "ls /opt/predlog/lib/python3.11/site-packages/*.libs")
    assert proc.returncode == 0, proc.stderr[-3000:]
    missing = {line.split()[0] for line in proc.stdout.splitlines() if "not found" in line}
    vendored = {line.strip() for line in proc.stdout.splitlines() if "=>" not in line}
    assert missing <= vendored, missing - vendored
