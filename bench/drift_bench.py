"""Per-window drift: predlog's numpy/scipy path against Evidently's Report, same data, one run.

    .venv/bin/python bench/drift_bench.py [--rows 10000] [--features 20] [--repeat 3]

Data: 20 features (14 numerical floats with some NaN, 6 categorical strings, two of
them binary), a reference and a window of 10,000 rows each, the window shifted in a
few features. Two references are timed: 10,000 rows (Evidently picks wasserstein /
jensenshannon) and 1,000 rows (ks / chisquare / z).

predlog: `WindowDrift.update(names, rows)` with the rows as a decoder gives them
(lists of Python values) plus `get()`; the profile is built once beforehand (timed
apart). Evidently: `Report([DataDriftPreset()]).run(current, reference)` on DataFrames
(import and a warm-up run excluded). Best of `--repeat` runs each. Prints both times,
the ratio, and whether every feature's test, score (to 1e-9) and flag and the dataset
drift are identical. Target: at least 20x faster with identical results.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.drift.reference import ReferenceProfile  # noqa: E402
from stream.drift.window import WindowDrift  # noqa: E402
from tests.fixtures.drift_data import evidently_drift  # noqa: E402


def make(n: int, n_features: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_cat = max(1, round(n_features * 0.3))
    cols = {}
    for i in range(n_features - n_cat):
        mu = 0.3 if shifted and i % 4 == 0 else 0.0
        x = rng.normal(mu, 1 + i / 10, n)
        x[rng.random(n) < 0.02] = np.nan
        cols[f"num{i}"] = x
    for j in range(n_cat):
        k = 2 if j < 2 else 3 + j
        p = np.ones(k) / k
        if shifted and j % 2 == 0:
            p = np.linspace(1, 2, k) / np.linspace(1, 2, k).sum()
        cols[f"cat{j}"] = rng.choice([f"c{v}" for v in range(k)], n, p=p).astype(object)
    return pd.DataFrame(cols)


def ours(profile: ReferenceProfile, names: list[str], rows: list[list]) -> dict:
    w = WindowDrift(profile, cap=max(50_000, len(rows)))
    w.update(names, rows)
    return w.get()[0]


def same(a: dict, b: dict) -> bool:
    if a["dataset_drift"] != b["dataset_drift"] or set(a["features"]) != set(b["features"]):
        return False
    for name, x in b["features"].items():
        y = a["features"][name]
        if (y["stattest"], y["drift"]) != (x["stattest"], x["drift"]):
            return False
        if not abs(y["score"] - x["score"]) <= 1e-9 * max(1.0, abs(x["score"])):
            return False
    return True


def best(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    import evidently  # noqa: F401

    print(f"evidently import: {time.perf_counter() - t:.2f} s (not counted)")
    cur = make(args.rows, args.features, 2, shifted=True)
    names = list(cur.columns)
    rows = cur.astype(object).values.tolist()
    ok_all, ratios = True, []
    for n_ref in (args.rows, 1000):
        ref = make(n_ref, args.features, 1, shifted=False)
        t = time.perf_counter()
        profile = ReferenceProfile.from_frame(ref)
        build = time.perf_counter() - t
        num = [c.name for c in profile.features.values() if c.kind == "numerical"]
        cat = [c.name for c in profile.features.values() if c.kind == "categorical"]
        evidently_drift(ref, cur, num, cat)  # warm-up
        def run_evidently(ref=ref, num=num, cat=cat):
            return evidently_drift(ref, cur, num, cat)[0]

        t_ev, theirs = best(run_evidently, args.repeat)
        t_us, mine = best(lambda profile=profile: ours(profile, names, rows), args.repeat)
        ok = same(mine, theirs)
        ok_all &= ok
        ratios.append(t_ev / t_us)
        tests = sorted({f["stattest"] for f in mine["features"].values()})
        print(f"reference {n_ref} rows, window {args.rows} rows x {args.features} features "
              f"({', '.join(tests)}; {mine['number_of_drifted_columns']} drifted):")
        print(f"  predlog   {t_us * 1000:9.1f} ms  (profile build once: {build * 1000:.1f} ms)")
        print(f"  evidently {t_ev * 1000:9.1f} ms")
        print(f"  ratio     {t_ev / t_us:9.1f}x   identical results: {ok}")
    print(f"min ratio {min(ratios):.1f}x (target >= 20x), all identical: {ok_all}")


if __name__ == "__main__":
    main()
