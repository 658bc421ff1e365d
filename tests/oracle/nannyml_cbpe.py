"""Run NannyML's own CBPE on references and windows from .npz files; print JSON.

Runs in the oracle environment (`make nannyml-env`, `.venv-nannyml`), never imported by
predlog. Input arrays: `ref_y`, `ref_p`, `ref_pred`, and per window i `w{i}_p`,
`w{i}_pred`. The reference is cut by NannyML's default chunker (as predlog assumes);
after the fit each window is estimated as exactly one chunk (a size-based chunker of
the window's length). Output, one per file: {"needs_calibration": bool, "windows": [{metric:
{value, sampling_error, lower, upper, lower_threshold, upper_threshold, alert}}]}.

    NML_DISABLE_USAGE_LOGGING=1 .venv-nannyml/bin/python tests/oracle/nannyml_cbpe.py a.npz b.npz
"""

import json
import os
import sys
import warnings

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
warnings.simplefilter("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from nannyml import CBPE  # noqa: E402
from nannyml.chunk import SizeBasedChunker  # noqa: E402

METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]
COLUMNS = {"value": "value", "sampling_error": "sampling_error",
           "upper": "upper_confidence_boundary", "lower": "lower_confidence_boundary",
           "upper_threshold": "upper_threshold", "lower_threshold": "lower_threshold",
           "alert": "alert"}


def _plain(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    v = float(v)
    return None if v != v else v


def run(path: str) -> dict:
    data = np.load(path)
    reference = pd.DataFrame({"y": data["ref_y"], "p": data["ref_p"], "pred": data["ref_pred"]})
    cbpe = CBPE(problem_type="classification_binary", y_pred_proba="p", y_pred="pred",
                y_true="y", metrics=METRICS)
    cbpe.fit(reference)
    windows = []
    i = 0
    while f"w{i}_p" in data:
        window = pd.DataFrame({"p": data[f"w{i}_p"], "pred": data[f"w{i}_pred"]})
        cbpe.chunker = SizeBasedChunker(chunk_size=len(window))
        rows = cbpe.estimate(window).filter(period="analysis").to_df()
        assert len(rows) == 1, rows
        windows.append({m: {k: _plain(rows[(m, col)].iloc[0]) for k, col in COLUMNS.items()}
                        for m in METRICS})
        i += 1
    return {"needs_calibration": bool(cbpe.needs_calibration), "windows": windows}


if __name__ == "__main__":
    print(json.dumps([run(p) for p in sys.argv[1:]]))
