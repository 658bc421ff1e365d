"""The reference side of one column, and the cleaning of window values for it.

A numerical column keeps its finite values sorted (Evidently drops NaN and ±inf from
both sides before any test); a categorical one keeps its category counts. Window
values are cleaned the same way: `clean_numerical` gives the finite float values,
`clean_categorical` the `{category: count}` of the non-missing ones. Category keys
are normalized so that a window's JSON `1.0` meets a reference's integer `1`.

>>> col = ReferenceColumn.categorical("c", {"a": 3, "b": 1})
>>> col.n, col.n_unique, clean_categorical(["a", None, float("nan"), "c", 2.0])
(4, 2, {'a': 1, 'c': 1, 2: 1})
>>> clean_numerical([1, None, "2.5", "x", float("inf")]).tolist()
[1.0, 2.5]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np

NUMERICAL = "numerical"
CATEGORICAL = "categorical"


def category_key(value):
    """A hashable, JSON-able category: None for missing (NaN, ±inf too, as Evidently
    drops them), integral floats as ints."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def clean_categorical(values: Iterable) -> dict:
    try:
        raw = Counter(values)  # counted in C; keys normalized per distinct value below
    except TypeError:  # an unhashable value (e.g. a nested list): count it as missing
        raw = Counter(v if isinstance(v, Hashable) else None for v in values)
    counts: dict = {}
    for value, n in raw.items():
        key = category_key(value)
        if key is not None:
            counts[key] = counts.get(key, 0) + n
    return counts


def _to_float(v) -> float:
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def to_float_array(values) -> np.ndarray:
    """Values as float64; None and unparsable values become NaN."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.fromiter((_to_float(v) for v in values), dtype=np.float64, count=len(values))


def clean_numerical(values) -> np.ndarray:
    arr = to_float_array(values)
    return arr[np.isfinite(arr)]


@dataclass
class ReferenceColumn:
    """One reference column: `kind`, the data the tests need, and its missing counts.

    `values` (numerical) are the sorted finite values; `categories`/`counts`
    (categorical) the distinct non-missing values and how often each occurs.
    `missing` counts NaN/None cells, `infinite` ±inf cells (numerical only).
    `stattest`/`threshold` override Evidently's default test selection and threshold.
    """

    name: str
    kind: str
    values: np.ndarray | None = None
    categories: list | None = None
    counts: np.ndarray | None = None
    missing: int = 0
    infinite: int = 0
    stattest: str | None = None
    threshold: float | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def numerical(cls, name: str, values, **kw) -> ReferenceColumn:
        arr = to_float_array(values)
        finite = np.isfinite(arr)
        kw.setdefault("missing", int(np.isnan(arr).sum()))
        kw.setdefault("infinite", int(np.isinf(arr).sum()))
        return cls(name, NUMERICAL, values=np.sort(arr[finite]), **kw)

    @classmethod
    def categorical(cls, name: str, counts: dict, **kw) -> ReferenceColumn:
        cats = list(counts)
        return cls(name, CATEGORICAL, categories=cats,
                   counts=np.array([counts[c] for c in cats], dtype=np.int64), **kw)

    # The fields of this column's kind, typed (a column has only those of its kind).
    @property
    def numbers(self) -> np.ndarray:
        """`values` of a numerical column."""
        if self.values is None:
            raise TypeError(f"{self.name!r} is not a numerical column")
        return self.values

    @property
    def category_names(self) -> list:
        """`categories` of a categorical column."""
        if self.categories is None:
            raise TypeError(f"{self.name!r} is not a categorical column")
        return self.categories

    @property
    def category_counts(self) -> np.ndarray:
        """`counts` of a categorical column."""
        if self.counts is None:
            raise TypeError(f"{self.name!r} is not a categorical column")
        return self.counts

    @property
    def n(self) -> int:
        """Rows with a usable (non-missing, finite) value."""
        return len(self.numbers) if self.kind == NUMERICAL else int(self.category_counts.sum())

    @property
    def n_unique(self) -> int:
        if self.kind == CATEGORICAL:
            return len(self.category_names)
        if "n_unique" not in self._cache:
            v = self.numbers
            self._cache["n_unique"] = int(np.count_nonzero(np.diff(v)) + 1) if len(v) else 0
        return self._cache["n_unique"]

    @property
    def std(self) -> float:
        if "std" not in self._cache:
            self._cache["std"] = float(np.std(self.numbers))
        return self._cache["std"]

    def value_counts(self) -> dict:
        if "counts" not in self._cache:
            if self.kind == CATEGORICAL:
                pairs = zip(self.category_names, self.category_counts.tolist(), strict=True)
            else:
                uniq, counts = np.unique(self.numbers, return_counts=True)
                pairs = zip(uniq.tolist(), counts.tolist(), strict=True)
            self._cache["counts"] = dict(pairs)
        return self._cache["counts"]

    def clean(self, values) -> np.ndarray | dict:
        """The window's values for this column, cleaned for the tests."""
        return clean_numerical(values) if self.kind == NUMERICAL else clean_categorical(values)

    def n_current(self, cleaned) -> int:
        return int(sum(cleaned.values())) if isinstance(cleaned, dict) else len(cleaned)
