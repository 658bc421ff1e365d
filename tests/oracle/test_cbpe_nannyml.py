"""`stream.cbpe.CBPE` against NannyML 0.13.1's CBPE itself, on the same reference and
windows (each window one chunk): estimates, sampling errors, confidence bounds, alert
thresholds, alerts and the calibration decision agree (values to 1e-9).

NannyML runs in its own environment (`make nannyml-env` creates `.venv-nannyml`; `make
test` does it first) through `tests/oracle/nannyml_cbpe.py`; without that environment
these tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from stream.cbpe import CBPE

REPO = Path(__file__).resolve().parents[2]
NANNYML_PYTHON = REPO / ".venv-nannyml" / "bin" / "python"
SCRIPT = Path(__file__).with_name("nannyml_cbpe.py")
TOLERANCE = 1e-9

pytestmark = pytest.mark.skipif(
    not NANNYML_PYTHON.exists(),
    reason=f"NannyML oracle environment absent ({NANNYML_PYTHON}): run `make nannyml-env`")


def _case(seed: int, n: int, *, skew: float = 1.5, calibrated: bool = False,
          decimals: int | None = None, positive_rate: float | None = None,
          windows=((600, 0.0), (1500, 1.0), (45, 0.0), (3, 0.0))) -> dict:
    rng = np.random.default_rng(seed)

    def proba(m, shift):
        p = rng.beta(2 + shift, 2, m)
        return np.round(p, decimals) if decimals is not None else p

    p = proba(n, 0.0)
    if positive_rate is not None:  # mostly positives: NannyML's AUROC error flips classes
        p = np.clip(p * 0.3 + positive_rate * 0.7, 0, 1)
    y = (rng.uniform(size=n) < (p if calibrated else p ** skew)).astype(int)
    arrays = {"ref_y": y, "ref_p": p, "ref_pred": (p >= 0.5).astype(int)}
    for i, (m, shift) in enumerate(windows):
        q = proba(m, shift)
        arrays[f"w{i}_p"], arrays[f"w{i}_pred"] = q, (q >= 0.5).astype(int)
    return arrays


CASES = {
    "needs-calibration": _case(1, 5003),
    "calibrated": _case(2, 4000, calibrated=True),
    "ties-2-decimals": _case(3, 2017, decimals=2),
    "mostly-positive": _case(4, 3000, positive_rate=0.9, skew=0.8),
    "small-reference": _case(5, 57, windows=((30, 0.0), (200, 2.0))),
    "one-class-windows": _case(6, 1000, windows=((100, 20.0), (50, 0.0))),
}


@pytest.fixture(scope="module")
def nannyml(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("cbpe")
    paths = []
    for name, arrays in CASES.items():
        paths.append(folder / f"{name}.npz")
        np.savez(paths[-1], **arrays)
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
    done = subprocess.run([str(NANNYML_PYTHON), str(SCRIPT), *map(str, paths)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(zip(CASES, json.loads(done.stdout), strict=True))


@pytest.mark.parametrize("case", list(CASES))
def test_cbpe_agrees_with_nannyml(case, nannyml):
    arrays, theirs = CASES[case], nannyml[case]
    est = CBPE().fit(arrays["ref_y"], arrays["ref_p"], arrays["ref_pred"])
    assert est.calibrated == theirs["needs_calibration"]
    for i, window in enumerate(theirs["windows"]):
        ours = est.estimate(arrays[f"w{i}_p"], arrays[f"w{i}_pred"])
        for metric, expected in window.items():
            got = ours[metric].as_dict()
            for field, want in expected.items():
                where = f"{case} window {i} {metric} {field}"
                if want is None or isinstance(want, bool):
                    assert got[field] == want, (where, got[field], want)
                else:
                    assert got[field] == pytest.approx(want, abs=TOLERANCE, rel=0), where


def test_cases_cover_both_calibration_decisions(nannyml):
    """The cases must exercise both branches of the calibration decision."""
    assert {r["needs_calibration"] for r in nannyml.values()} == {True, False}
