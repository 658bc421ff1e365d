"""Data and prediction drift per window against a reference profile, with Evidently
0.7.23's numbers (pure numpy/scipy), river early warnings and Evidently reports.

- `ReferenceProfile` (reference.py): what drift needs from the training data; `.npz`.
- `WindowDrift` (window.py): a window's buffered rows → the summary's `drift` and
  `prediction_drift` parts.
- `STATTESTS`, `column_drift` (stattests.py, selection.py): the tests and the choice.
- `EarlyWarnings` (early.py, imports river): ADWIN/PageHinkley per numeric stream.
- `drift_report_html` (report.py, imports Evidently when called).
"""

from stream.drift.reference import ReferenceProfile
from stream.drift.selection import column_drift
from stream.drift.stattests import STATTESTS
from stream.drift.window import WindowDrift

__all__ = ["STATTESTS", "EarlyWarnings", "ReferenceProfile", "WindowDrift", "column_drift",
           "drift_report_html"]


def __getattr__(name):  # river and Evidently load only when asked for
    if name == "EarlyWarnings":
        from stream.drift.early import EarlyWarnings
        return EarlyWarnings
    if name == "drift_report_html":
        from stream.drift.report import drift_report_html
        return drift_report_html
    raise AttributeError(name)
