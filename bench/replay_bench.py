"""In-process replay throughput against reading and JSON-decoding the same file, one run.

    .venv/bin/python bench/replay_bench.py [--rows 1000000] [--out /tmp/predlog-bench]

Builds an input of about ROWS prediction rows by repeating the demo's year of
flight-delay logs (`agents.demo_data`) with fresh request ids and later event times,
plus its labels, then times:
- baseline: read the gzip NDJSON line by line and `orjson.loads` each line and body;
- replay: `agents.replay.replay_files` with drift (the demo's reference) and labels on,
  weekly windows, file outputs on, MLflow and HTML reports off;
and prints rows/s for both, the ratio (by wall time, and by this process's CPU time,
steadier on a shared machine), and the peak RSS sampled every second.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import resource
import sys
import threading
import time
from pathlib import Path

import orjson

# This checkout's code, not whatever the editable install points at (a script's own
# folder, not the working directory, is first on sys.path): run from a worktree, the
# bench would otherwise time the main checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

YEAR = 365 * 86400


def build_input(out: Path, rows: int) -> tuple[Path, Path, Path, int]:
    from agents.demo_data import generate_demo
    from agents.reference_cli import save_profile
    from stream.drift.reference import ReferenceProfile

    files = generate_demo(out / "data")
    reference = out / "reference.npz"
    save_profile(ReferenceProfile.from_frame(files.reference_frame(), **files.reference_roles()),
                 reference)
    lines = gzip.open(files.logs, "rb").read().splitlines()
    labels = list(csv.DictReader(open(files.labels)))
    per_copy = 50_506  # rows of the default demo year
    copies = max(1, round(rows / per_copy))
    logs, labels_out = out / f"bench-{copies}.ndjson.gz", out / f"bench-{copies}-labels.csv"
    if not logs.exists():
        with gzip.open(logs, "wb", compresslevel=1) as fh:
            for c in range(copies):
                for line in lines:
                    d = orjson.loads(line)
                    h = d["headers"]
                    h["ce-requestid"] = f"{h['ce-requestid']}-{c}"
                    t = time.strptime(h["ce-time"][:19], "%Y-%m-%dT%H:%M:%S")
                    year = t.tm_year + c
                    h["ce-time"] = f"{year}{h['ce-time'][4:]}"
                    fh.write(orjson.dumps(d) + b"\n")
        with open(labels_out, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["request_id", "row", "label", "timestamp"])
            for c in range(copies):
                for r in labels:
                    ts = r["timestamp"]
                    w.writerow([f"{r['request_id']}-{c}", r["row"], r["label"],
                                f"{int(ts[:4]) + c}{ts[4:]}"])
    return logs, labels_out, reference, copies * per_copy


def peak_rss_sampler(stop: threading.Event, peaks: list[int]) -> None:
    while not stop.wait(1.0):
        peaks.append(int(open("/proc/self/statm").read().split()[1]) * 4096)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/predlog-bench"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    logs, labels, reference, rows = build_input(args.out, args.rows)

    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    with gzip.open(logs, "rb") as fh:
        for line in fh:
            orjson.loads(orjson.loads(line)["body"])
            n += 1
    t_base, c_base = time.perf_counter() - t0, time.process_time() - c0

    from agents.replay import ReplayOptions, replay_files
    from agents.settings import Settings

    stop, peaks = threading.Event(), []
    sampler = threading.Thread(target=peak_rss_sampler, args=(stop, peaks), daemon=True)
    sampler.start()
    t0, c0 = time.perf_counter(), time.process_time()
    settings = Settings(window_seconds=7 * 86400, references=f"flight-delay={reference}",
                        task="classification", label_horizon_seconds=30 * 86400)
    result = replay_files([logs], settings, args.out / "replay",
                          ReplayOptions(labels=[labels], mlflow=False))
    t_replay, c_replay = time.perf_counter() - t0, time.process_time() - c0
    stop.set()
    sampler.join()
    print(f"input: {n:,} log lines, {rows:,} prediction rows, {result.windows:,} windows, "
          f"{result.labels:,} labels")
    print(f"baseline read+orjson.loads  {rows / t_base:12,.0f} rows/s  ({t_base:.1f} s)")
    print(f"replay (drift+labels on)    {rows / t_replay:12,.0f} rows/s  ({t_replay:.1f} s)")
    print(f"ratio replay/baseline time  {t_replay / t_base:.1f}x")
    # CPU seconds of this process: on a shared machine, wall time also counts waiting.
    print(f"CPU: baseline {rows / c_base:,.0f} rows/s ({c_base:.1f} s), replay "
          f"{rows / c_replay:,.0f} rows/s ({c_replay:.1f} s), ratio {c_replay / c_base:.1f}x")
    if peaks:
        q = len(peaks) // 4 or 1
        print(f"RSS: first quarter max {max(peaks[:q]) / 2**20:,.0f} MiB, "
              f"last quarter max {max(peaks[-q:]) / 2**20:,.0f} MiB, "
              f"peak {max(peaks) / 2**20:,.0f} MiB (ru_maxrss "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB)")


if __name__ == "__main__":
    main()
