"""feature_stats equals the cell-by-cell definition, whatever mix of rows it gets."""

from __future__ import annotations

import random

import numpy as np

from stream.events import ModelRef
from stream.pairs import Pair
from stream.summary import feature_names_for, feature_stats


def _cell_by_cell(pairs, schema=None):
    columns: dict[str, list[float]] = {}
    for p in pairs:
        for row in p.rows or ():
            names = feature_names_for(p, len(row), schema)
            for name, v in zip(names, row, strict=False):
                if isinstance(v, int | float) and not isinstance(v, bool):
                    columns.setdefault(name, []).append(float(v))
    out = {}
    for name in sorted(columns):
        arr = np.asarray(columns[name])
        out[name] = {"mean": round(float(arr.mean()), 12), "std": round(float(arr.std()), 12),
                     "min": float(arr.min()), "max": float(arr.max())}
    return out


def test_feature_stats_matches_cell_by_cell():
    rng = random.Random(3)
    m = ModelRef("m", "ns")
    values = [1, 2.5, -0.1, True, "x", None, float("nan"), 7, 1e300]
    namings = [("a", "b", "c"), ("b", "a", "c"), ("a", "a", "c"), None, ("a", "b")]
    for _ in range(200):
        pairs = []
        for i in range(rng.randint(0, 30)):
            width = rng.choice([3, 3, 3, 2, 4])
            rows = [[rng.choice(values) for _ in range(rng.choice([width, width, width - 1]))]
                    for _ in range(rng.randint(0, 4))]
            pairs.append(Pair(m, f"r{i}", float(i), float(i) + 0.1,
                              rng.choice(namings), rows or None))
        schema = rng.choice([None, ("x", "y", "z")])
        got, want = feature_stats(pairs, schema), _cell_by_cell(pairs, schema)
        assert str(got) == str(want)  # str: NaN == NaN
