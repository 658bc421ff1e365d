"""Evidently HTML drift reports as files, one per model window.

`add(name, profile, current)` queues a report (the window's sampled rows, e.g.
`WindowDrift.current_frame()`) and returns the path it will be written to;
`flush()` builds every queued report with Evidently (imported on first use, ~3–6 s)
and writes it atomically (temporary file, then rename). The paths can be handed to
the MLflow sink as the `drift_report.html` artifact.

Evidently is an optional extra (`predlog[reports]`), left out of the container image:
`evidently_missing()` says why reports cannot be built here (None when they can), for the
replay to refuse `--reports` and the worker to log it and go on without reports.

>>> import tempfile
>>> sink = EvidentlyReportSink(tempfile.gettempdir())
>>> sink.path_for("seldon/iris 2026-11-01T00:05:00Z").name
'seldon_iris_2026-11-01T00-05-00Z.html'
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from pathlib import Path

import pandas as pd

from stream.drift.reference import ReferenceProfile
from stream.drift.report import drift_report_html


def evidently_missing() -> str | None:
    """Why Evidently reports cannot be built in this environment, or None if they can."""
    if importlib.util.find_spec("evidently") is None:
        return ("Evidently HTML reports need the package 'evidently', not installed here: "
                "install the extra 'predlog[reports]' (container image: build it with "
                "--build-arg PREDLOG_EXTRAS=reports)")
    return None


class EvidentlyReportSink:
    def __init__(self, out_dir: str | Path, drift_share: float = 0.5):
        if not 0 < drift_share <= 1:
            raise ValueError(f"drift_share must be in (0, 1], got {drift_share!r}")
        self.out_dir = Path(out_dir)
        self.drift_share = drift_share
        self._queue: list[tuple[Path, ReferenceProfile, pd.DataFrame]] = []

    def path_for(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace(":", "-")).strip("._") or "report"
        return self.out_dir / f"{safe}.html"

    def add(self, name: str, profile: ReferenceProfile, current: pd.DataFrame) -> Path:
        path = self.path_for(name)
        self._queue.append((path, profile, current))
        return path

    def flush(self) -> list[Path]:
        written = []
        self.out_dir.mkdir(parents=True, exist_ok=True)
        while self._queue:
            path, profile, current = self._queue[0]
            with warnings.catch_warnings():  # Evidently's plots divide by zero on flat columns
                warnings.simplefilter("ignore", RuntimeWarning)
                html = drift_report_html(profile, current, drift_share=self.drift_share)
            tmp = path.with_suffix(".html.tmp")
            tmp.write_text(html, encoding="utf-8")
            os.replace(tmp, path)
            written.append(path)
            self._queue.pop(0)
        return written
