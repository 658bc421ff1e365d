"""End-to-end throughput of one `predlog worker` process, against a raw consume loop.

    export PREDLOG_STACK_KAFKA_PORT=19092     # or wherever your stack's Kafka is
    deploy/stack/stack.sh up kafka
    .venv/bin/python bench/worker_bench.py [--events 200000] [--partitions 4]
                                           [--profile worker.prof] [--keep-topics]

What it does, in one run, on fresh topics of its own (`bench<hex>.*`, deleted at the end):

1. builds N Seldon v1 logger records (Kafka mode: CloudEvent headers, JSON body) by
   replaying the generated stream of `tests/fixtures/seldon_stream.py` (2,000 requests,
   ~4,100 records: duplicates, failures, unanswered requests, orphans, local disorder)
   as many times as needed, each copy with new request/event ids and shifted 1,200 s
   later in event time; then one flush request/response per partition far past the end;
2. produces them all to the events topic *before* anything consumes it;
3. baseline: a raw aiokafka consumer reads the whole topic and `orjson.loads` every
   value; events/s from its first to its last record;
4. starts one real `predlog worker` process (Elasticsearch sink disabled with
   PREDLOG_ELASTICSEARCH_URL="" and no MLflow sink, window 300 s, the other settings at
   their defaults)
   and times it from the start of consumption (the first /metrics scrape showing
   `predlog_events_consumed_total` > 0, polled every 0.1 s) to the broker timestamp of
   the last window summary on the windows topic, when every expected window arrived;
   RSS of the worker (psutil if installed, else /proc/<pid>/status) is sampled every
   0.5 s;
5. the floor: a bare Faust app (`bench/faust_floor_app.py`) whose one agent only takes
   the topic in batches through Faust's own per-event delivery (`take_events`; predlog's
   stages get whole fetches from `agents/faust_adapter.py` instead) — what Faust itself costs
   per event (skip with `--no-floor`);
6. prints events/s of all, the ratios worker/raw and worker/bare Faust, and RSS at
   start, 25/50/75/100 % of the events consumed, peak and last.

Targets (the issue): >= 20,000 events/s per worker process, >= half the raw rate, RSS
flat over 1M events. With `--profile FILE` the worker runs under cProfile (slower;
the figures are then only for the profile) and the top functions are printed. With
`--core` the same records also go through predlog's stages in process, without Kafka
or Faust (`--core-profile FILE` profiles that run): the ceiling of predlog's own code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.seldon_stream import (  # noqa: E402
    flush_records,
    generate,
    iso,
    oracle,
)

WINDOW = 300.0
COPY_SECONDS = 1200.0  # event-time span of one template copy (a multiple of WINDOW)


# -- records -------------------------------------------------------------------------------------
def build_records(n_events: int, template_requests: int, partitions: int):
    """(records, expected window count, flush records): whole template copies, >= n_events."""
    tpl = generate(n=template_requests, seconds=COPY_SECONDS)
    keys = oracle(tpl, WINDOW).keys()
    parsed = []
    for key, value, headers in tpl.records:
        h = dict(headers)
        t = datetime.fromisoformat(h["ce_time"].decode().replace("Z", "+00:00")).timestamp()
        parsed.append((key.decode(), value, headers, t))
    copies = max(1, math.ceil(n_events / len(parsed)))
    records = []
    for c in range(copies):
        offset = c * COPY_SECONDS
        tag = f".{c}"
        for rid, value, headers, t in parsed:
            new_rid = (rid + tag).encode()
            ce_time = iso(t + offset).encode()
            hs = []
            for k, v in headers:
                if k == "ce_requestid":
                    v = new_rid
                elif k == "ce_id":
                    v = v + tag.encode()
                elif k == "ce_time":
                    v = ce_time
                hs.append((k, v))
            records.append((new_rid, value, hs))
    # Windows: the template's windows, shifted by whole copies (COPY_SECONDS % WINDOW == 0).
    expected = {(ns, m, node, start + c * COPY_SECONDS)
                for c in range(copies) for ns, m, node, start in keys}
    end = tpl.end_time + (copies - 1) * COPY_SECONDS
    return records, len(expected), flush_records(end + 3600, partitions)


# -- Kafka helpers -------------------------------------------------------------------------------
def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        admin.close()


def delete_topics(bootstrap: str, prefix_or_names: list[str]) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        existing = set(admin.list_topics())
        doomed = sorted(t for t in existing if any(t == p or t.startswith(p + "-")
                                                   for p in prefix_or_names))
        if doomed:
            admin.delete_topics(doomed)
    except Exception as exc:  # cleanup is best effort
        print(f"  (could not delete bench topics: {exc})")
    finally:
        admin.close()


async def produce(bootstrap: str, topic: str, records, flush) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024, max_request_size=8 * 1024 * 1024)
    await producer.start()
    t0 = time.perf_counter()
    try:
        futures = []
        for key, value, headers in records:
            futures.append(await producer.send(topic, value=value, key=key, headers=headers))
            if len(futures) >= 20000:
                await asyncio.gather(*futures)
                futures = []
        for p, key, value, headers in flush:
            futures.append(await producer.send(topic, value=value, key=key, headers=headers,
                                               partition=p))
        await asyncio.gather(*futures)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - t0


async def raw_consume(bootstrap: str, topic: str, total: int) -> tuple[float, int]:
    """The floor: aiokafka fetch + orjson.loads of every value, nothing else."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    n, first, last = 0, None, None
    loads = orjson.loads
    try:
        deadline = time.monotonic() + 600
        while n < total and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10000)
            for records in batches.values():
                if first is None:
                    first = time.perf_counter()
                for r in records:
                    loads(r.value)
                n += len(records)
            if batches:
                last = time.perf_counter()
    finally:
        await consumer.stop()
    return (last - first) if first is not None else float("nan"), n


# -- the worker ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int | None:
    try:
        import psutil
        return psutil.Process(pid).memory_info().rss
    except ImportError:
        pass
    except Exception:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class WindowWatcher(threading.Thread):
    """Collects (broker timestamp, window) of every real summary on the windows topic."""

    def __init__(self, bootstrap: str, topic: str, expected: int) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.expected = bootstrap, topic, expected
        self.windows: dict[tuple, float] = {}
        self.last_ts = 0.0
        self.done = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(self.topic, bootstrap_servers=self.bootstrap,
                                 auto_offset_reset="earliest", group_id=None)
        try:
            while not self.stop.is_set():
                for batch in consumer.poll(timeout_ms=200).values():
                    for r in batch:
                        s = json.loads(r.value)
                        if s["model"] == "flush":
                            continue
                        key = (s["namespace"], s["model"], s["node"], s["window_start"])
                        self.windows.setdefault(key, r.timestamp / 1000.0)
                        self.last_ts = max(self.last_ts, r.timestamp / 1000.0)
                if len(self.windows) >= self.expected:
                    self.done.set()
        finally:
            consumer.close()


CONSUMED = re.compile(r'^predlog_events_consumed_total\{topic="([^"]+)"\} ([0-9.e+]+)$', re.M)


def run_worker(args, names: dict[str, str], group: str, total: int, expected: int,
               log_path: Path) -> dict:
    port = free_port()
    env = dict(os.environ,
               PREDLOG_KAFKA_BOOTSTRAP=args.bootstrap, PREDLOG_CONSUMER_GROUP=group,
               PREDLOG_TOPIC_EVENTS=names["events"], PREDLOG_TOPIC_PAIRS=names["pairs"],
               PREDLOG_TOPIC_WINDOWS=names["windows"], PREDLOG_TOPIC_DLQ=names["dlq"],
               PREDLOG_TOPIC_LABELS=names["labels"],
               PREDLOG_EXTERNAL_TOPICS_PATTERN=f"^{re.escape(group)}\\.external$",
               PREDLOG_PARTITIONS=str(args.partitions),
               PREDLOG_WINDOW_SECONDS=str(WINDOW),
               PREDLOG_ELASTICSEARCH_URL="", PREDLOG_MLFLOW_TRACKING_URI="",
               PREDLOG_PROMETHEUS_PORT=str(port),
               PREDLOG_DATA_DIR=str(log_path.with_suffix(".data")))
    cmd = [sys.executable]
    if args.profile:
        cmd += ["-m", "cProfile", "-o", str(Path(args.profile).resolve())]
    cmd += ["-m", "agents.cli", "worker"]  # default log level (info), as deployed
    watcher = WindowWatcher(args.bootstrap, names["windows"], expected)
    watcher.start()
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    samples: list[tuple[float, int, int | None]] = []  # (wall time, consumed, rss)
    launched = time.time()
    start = cpu_start = cpu_end = None
    consumed = 0
    last_rss_at = 0.0
    client = httpx.Client(timeout=2)
    try:
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited ({proc.returncode}), see {log_path}")
            try:
                text = client.get(f"http://127.0.0.1:{port}/metrics").text
                consumed = sum(int(float(v)) for t, v in CONSUMED.findall(text)
                               if t == names["events"])
            except httpx.HTTPError:
                pass
            now = time.time()
            if start is None and consumed > 0:
                start, cpu_start = now, cpu_seconds(proc.pid)
            if now - last_rss_at >= 0.5 or (start is not None and not samples):
                samples.append((now, consumed, rss_bytes(proc.pid)))
                last_rss_at = now
            if watcher.done.is_set():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"worker did not emit {expected} windows in {args.timeout} s "
                               f"(got {len(watcher.windows)}, consumed {consumed}/{total}); "
                               f"see {log_path}")
        samples.append((time.time(), consumed, rss_bytes(proc.pid)))
        cpu_end = cpu_seconds(proc.pid)
    finally:
        client.close()
        watcher.stop.set()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        watcher.join(timeout=10)
    consumed_all = next((t for t, c, _ in samples if c >= total), None)
    return {"start": start, "end": watcher.last_ts, "launched": launched,
            "consumed_all": consumed_all, "samples": samples,
            "windows": len(watcher.windows),
            "cpu": (cpu_end - cpu_start) if cpu_start is not None and cpu_end else None}


def run_floor(args, topic: str, total: int, workdir: Path) -> tuple[float, float] | None:
    """(seconds, CPU seconds) a bare Faust agent takes to consume the topic, or None."""
    env = dict(os.environ, FLOOR_BOOTSTRAP=args.bootstrap, FLOOR_TOPIC=topic,
               FLOOR_TOTAL=str(total), FLOOR_PORT=str(free_port()),
               FLOOR_DATADIR=str(workdir / f"{topic}-floor.data"))
    try:
        out = subprocess.run([sys.executable, str(REPO / "bench" / "faust_floor_app.py"),
                              "worker", "-l", "warn"], env=env, cwd=REPO, capture_output=True,
                             text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return None
    for line in (out.stdout + out.stderr).splitlines():
        if "FLOOR " in line:
            _, n, secs, cpu = line[line.index("FLOOR "):].split()[:4]
            return float(secs), float(cpu)
    return None


def run_core(records, flush, partitions: int, profile: str | None) -> tuple[float, int, int]:
    """predlog's own per-event work, in process, no Kafka: what the worker's agents call.

    Decode every record, pair it (`PairingStage`, per partition of the request id as the
    worker does, plain dicts as stores), encode and decode each outcome as it crosses the
    pairs topic, file it (`WindowStage`), and close windows per batch of 1,000 records.
    Returns (seconds, events, windows).
    """
    import cProfile
    import zlib

    from stream.decode.kafka_records import decode_kafka_record
    from stream.events import DeadLetter
    from stream.pairs import decode_outcome, encode_outcome
    from stream.pipeline import PairingStage, StepResult, WindowStage
    from stream.watermark import Watermark

    ttl, hold = 300.0, 300.0  # the worker's defaults: pairing TTL 300 s, lateness 60 s
    pairing = [PairingStage(ttl, {}) for _ in range(partitions)]
    windowing = WindowStage(WINDOW, hold, {}, {})
    marks = Watermark(1e9)
    topic = "bench.events"
    stream = [(zlib.crc32(k) % partitions, k, v, h) for k, v, h in records]
    stream += [(p, k, v, h) for p, k, v, h in flush]
    prof = cProfile.Profile() if profile else None
    windows = 0
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    ts = round(time.time() * 1000)  # a Kafka timestamp: int ms
    for i in range(0, len(stream), 1000):
        result = StepResult()
        for off, (p, key, value, headers) in enumerate(stream[i:i + 1000], i):
            item = decode_kafka_record(topic, key, value, headers, ts, partition=p, offset=off)
            if isinstance(item, DeadLetter):
                continue
            marks.update(p, item.event_time)
            for outcome in pairing[p].process(item):
                o, _, _ = decode_outcome(encode_outcome(outcome, p, marks.get()))
                windowing.add(o, result)
        wm = marks.get()
        for p in range(partitions):
            for outcome in pairing[p].expire(wm):
                windowing.add(decode_outcome(encode_outcome(outcome, p, wm))[0], result)
        windowing.close_ready(wm, result)
        windows += sum(1 for k, _ in result.summaries if k.model != "flush")
    if prof:
        prof.disable()
        prof.dump_stats(profile)
    return time.perf_counter() - t0, len(stream), windows


def mib(b: int | None) -> str:
    return "n/a" if b is None else f"{b / 2**20:.0f} MiB"


def report_memory(samples, total: int) -> None:
    live = [(t, c, r) for t, c, r in samples if r is not None and c > 0]
    if not live:
        print("  RSS: no samples")
        return
    marks = []
    for frac in (0.25, 0.5, 0.75, 1.0):
        hit = next(((c, r) for _, c, r in live if c >= frac * total), live[-1][1:])
        marks.append(f"{int(frac * 100)}% {mib(hit[1])}")
    peak = max(r for *_, r in live)
    print(f"  worker RSS: at start {mib(live[0][2])}; " + ", ".join(marks)
          + f"; peak {mib(peak)}; last {mib(live[-1][2])} ({len(live)} samples)")


def print_profile(path: str, top: int = 35, what: str = "the worker") -> None:
    import pstats

    stats = pstats.Stats(path)
    stats.strip_dirs()
    print(f"\n-- cProfile of {what}, top {top} by own time (tottime) --")
    stats.sort_stats("tottime").print_stats(top)
    print(f"-- top {top} by cumulative time --")
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--template-requests", type=int, default=2000)
    ap.add_argument("--bootstrap", default=os.environ.get(
        "PREDLOG_KAFKA_BOOTSTRAP",
        f"127.0.0.1:{os.environ.get('PREDLOG_STACK_KAFKA_PORT', '19092')}"))
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds the worker may take")
    ap.add_argument("--profile", metavar="FILE", help="run the worker under cProfile")
    ap.add_argument("--keep-topics", action="store_true")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip the bare Faust agent run (Faust's own ceiling)")
    ap.add_argument("--core", action="store_true",
                    help="also time predlog's stages in process (no Kafka) on the same records")
    ap.add_argument("--core-profile", metavar="FILE",
                    help="with --core: cProfile the in-process run into FILE and print it")
    args = ap.parse_args(argv)

    group = f"bench{uuid.uuid4().hex[:8]}"
    names = {n: f"{group}.{n}" for n in ("events", "pairs", "windows", "dlq", "labels")}
    t0 = time.perf_counter()
    records, expected, flush = build_records(args.events, args.template_requests,
                                             args.partitions)
    total = len(records) + len(flush)
    print(f"worker_bench: {total:,} events ({len(records):,} + {len(flush)} flush), "
          f"{expected} windows expected, {args.partitions} partitions, "
          f"Kafka {args.bootstrap}, {os.cpu_count()} CPUs "
          f"(built in {time.perf_counter() - t0:.1f} s)")
    if args.core or args.core_profile:
        secs, n, w = run_core(records, flush, args.partitions, args.core_profile)
        print(f"  predlog stages in process (decode, pair, outcome codec, windows; no Kafka): "
              f"{n / secs:>10,.0f} events/s ({n:,} in {secs:.2f} s; {w} windows)")
        if args.core_profile:
            print_profile(args.core_profile, top=25, what="the in-process stages")
    create_topics(args.bootstrap, list(names.values()), args.partitions)
    try:
        secs = asyncio.run(produce(args.bootstrap, names["events"], records, flush))
        print(f"  produced:  {total / secs:>10,.0f} events/s ({secs:.1f} s)")
        del records

        raw_secs, n = asyncio.run(raw_consume(args.bootstrap, names["events"], total))
        raw_rate = n / raw_secs
        print(f"  raw aiokafka + orjson.loads: {raw_rate:>10,.0f} events/s "
              f"({n:,} in {raw_secs:.2f} s)")

        workdir = Path(os.environ.get("PREDLOG_STACK_DIR", "/tmp"))
        floor = None if args.no_floor else run_floor(args, names["events"], total, workdir)
        if floor is not None:
            print(f"  bare Faust agent (take_events, no work): {total / floor[0]:>10,.0f} "
                  f"events/s ({floor[1]:.1f} s CPU)")
        log_path = workdir / f"{group}-worker.log"
        res = run_worker(args, names, group, total, expected, log_path)
        if res["start"] is None:
            raise RuntimeError("never saw the worker consume")
        secs = res["end"] - res["start"]
        rate = total / secs
        print(f"  predlog worker (start of consumption -> last window): {rate:>10,.0f} "
              f"events/s ({total:,} in {secs:.2f} s; {res['windows']} windows; "
              f"start-up {res['start'] - res['launched']:.1f} s)")
        if res["cpu"] is not None:
            print(f"    worker CPU time over that span: {res['cpu']:.1f} s "
                  f"({100 * res['cpu'] / secs:.0f}% of one core)")
        if res["consumed_all"] is not None:
            c = res["consumed_all"] - res["start"]
            print(f"    of which pair stage consumed every event after {c:.2f} s "
                  f"({total / c:,.0f} events/s)")
        print(f"  ratio worker/raw: {rate / raw_rate:.2f} "
              f"(targets: >= 20,000 events/s and >= 0.50)"
              + ("  [under cProfile]" if args.profile else ""))
        if floor is not None:
            print(f"  ratio worker/bare Faust: {rate * floor[0] / total:.2f}")
        report_memory(res["samples"], total)
        print(f"  worker log: {log_path}")
    finally:
        if not args.keep_topics:
            delete_topics(args.bootstrap, [group, f"floor-{names['events']}", *names.values()])
    if args.profile:
        print_profile(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
