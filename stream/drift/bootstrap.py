"""A reference from a model's own first traffic, for a model without a configured one.

`BootstrapReference` takes in a model node's first windows, whole and in window order
(the window stage closes them by start, then id), as drift sees them: each logged input
row (of at most `stream.summary.MAX_FEATURE_COLUMNS` values; features named as
`stream.summary.feature_names_for` names them) with the prediction value of its output
row (missing for a failed request or an output count that does not match the rows).

It takes the windows that start before the first one's start + `seconds`, up to
`max_rows` rows (the first ones, in that order), and is *complete* once it holds
`max_rows` rows or a later window is offered (windows without a row do not count: a
model whose first `seconds` logged no input row starts over from its next window).
From then on `profile` is the model's reference: `ReferenceProfile.from_frame` of the
rows, each column's kind inferred (`stream.drift.reference.infer_kind`), a prediction
column (`prediction`) when any row has one, and `origin` naming the bootstrap and its
time range.

Windows taken in report drift status `bootstrapping` (they are the reference); the window
whose start completes it is the first one compared. `state()` is the typed record
(`stream.state.BootstrapState`) a worker changelogs; built again from it, the reference
and its profile are the same: replay and worker agree. Deterministic, no I/O.

>>> from stream.eventtime import NS
>>> b = BootstrapReference(seconds=3600, max_rows=1000)
>>> b.offer(0, 1800 * NS, [("x",)] * 40, [[[float(i)]] for i in range(40)], [[1]] * 40)
True
>>> b.complete, b.offer(3600 * NS, 5400 * NS, [], [], [])
(False, False)
>>> b.complete, b.rows, list(b.profile.features), b.profile.prediction.name
(True, 40, ['x'], 'prediction')
>>> b.profile.origin
{'source': 'bootstrap', 'from': '1970-01-01T00:00:00Z', 'to': '1970-01-01T00:30:00Z'}
>>> BootstrapReference(3600, 1000, b.state()).state() == b.state()
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stream.eventtime import format_utc, seconds_to_ns
from stream.state import BootstrapState
from stream.summary import MAX_FEATURE_COLUMNS

PREDICTION = "prediction"


class BootstrapReference:
    """See the module docstring. `seconds`: how much of the model's first traffic (from
    its first window's start); `max_rows`: at most this many rows; `state`: a stored
    state to continue from."""

    def __init__(self, seconds: float, max_rows: int, state: BootstrapState | None = None
                 ) -> None:
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        self.span = seconds_to_ns(seconds)
        self.max_rows = max_rows
        self.start: int | None = None
        self.end = 0
        self.complete = False
        self.announced = False  # its profile went out (MLflow) with a window's summary
        self.rows = 0
        self.columns: dict[str, list[Any]] = {}
        self.predictions: list[Any] = []
        self._profile: Any = None
        if state is not None:
            self.start, self.end, self.complete = state.start, state.end, state.complete
            self.announced, self.rows = state.announced, state.rows
            self.columns = {k: list(v) for k, v in state.columns.items()}
            self.predictions = list(state.predictions)

    def state(self) -> BootstrapState:
        if self.start is None:
            raise ValueError("nothing offered yet")
        return BootstrapState(self.start, self.end, self.complete, self.announced, self.rows,
                              {k: list(v) for k, v in self.columns.items()},
                              list(self.predictions))

    def offer(self, start: int, end: int, names: Sequence[Sequence[str]],
              rows: Sequence[Sequence[Sequence[Any]]], outputs: Sequence[Any]) -> bool:
        """A closed window [start, end) (int ns): per request, its feature names, input
        rows and prediction values (one per output row; None for a failed request).
        Returns True when the window went into the reference (it is then not compared)."""
        if self.complete:
            return False
        if self.start is None or (self.rows == 0 and start >= self.start + self.span):
            self.start = start  # the first window (again, while none had a row)
        elif start >= self.start + self.span:
            self.complete = True
            return False
        self.end = max(self.end, end)
        columns = self.columns
        for request_names, request_rows, predictions in zip(names, rows, outputs,
                                                            strict=True):
            aligned = predictions is not None and len(predictions) == len(request_rows)
            for i, row in enumerate(request_rows):
                if self.rows >= self.max_rows:
                    break
                if len(row) > MAX_FEATURE_COLUMNS:
                    continue
                for name, value in zip(request_names, row, strict=False):
                    column = columns.get(name)
                    if column is None:
                        column = columns[name] = [None] * self.rows
                    column.append(value)
                self.rows += 1
                for column in columns.values():  # features this row did not have
                    if len(column) < self.rows:
                        column.append(None)
                self.predictions.append(predictions[i] if aligned else None)
        if self.rows >= self.max_rows:
            self.complete = True
        return True

    @property
    def profile(self) -> Any:
        """The reference profile (`ReferenceProfile`) of a complete bootstrap, built once."""
        if not self.complete or self.start is None:
            raise ValueError("the bootstrap reference is not complete")
        if self._profile is None:
            import pandas as pd

            from stream.drift.reference import ReferenceProfile

            data: dict[str, Any] = {name: pd.Series(col, dtype=_dtype(col))
                                    for name, col in self.columns.items()}
            prediction = None
            if any(v is not None for v in self.predictions):
                prediction = PREDICTION if PREDICTION not in data else f"__{PREDICTION}__"
                data[prediction] = pd.Series(self.predictions, dtype=_dtype(self.predictions))
            profile = ReferenceProfile.from_frame(
                pd.DataFrame(data), features=list(self.columns), prediction=prediction)
            profile.origin = {"source": "bootstrap", "from": format_utc(self.start),
                              "to": format_utc(self.end)}
            self._profile = profile
        return self._profile


def _dtype(values: list[Any]) -> str:
    """float64 for a column of numbers (bools are no numbers) and None, else object."""
    numbers = all(v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                  for v in values)
    return "float64" if numbers else "object"
