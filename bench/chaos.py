"""Chaos harness: many faults at once on the real stack; the workers' results must still be
what `predlog replay` computes from the same input.

    .venv/bin/python bench/chaos.py [--events 1000000] [--kills 10] [--seed 0]
                                    [--label-state memory|disk] [--no-outages]

Needs the local stack (`predlog stack up`; the PREDLOG_STACK_* ports and dir of
deploy/stack/lib.sh). `make chaos` runs the full form; `--events 100000 --kills 3` is the
quick one (not in `make test` yet: README, Known limits).

Input: the demo's flight-delay traffic (`agents.demo_data`, a year per copy, each copy in
its own year), cut to `--events` log lines, under a model name of its own
(`chaos-<run id>`), with its labels (late: days to weeks) and two kinds of poison mixed in:
bodies that are not JSON (each must become an `invalid_json` dead letter) and requests
whose numeric feature is a string (Elasticsearch's mapping may reject the document: an
`es_rejected` dead letter, counted against the documents).

1. **Expected**: `predlog replay` of the input in-process (window 7 d, the demo's
   reference with scores, the label horizon longer than the input, so which label joins
   does not depend on how far the events topic ran ahead of the labels topic).
2. **Live**: two `predlog worker` processes (each its own data dir, as two pods) on their own
   topics, Elasticsearch and MLflow sinks on. A producer thread sends events and labels in
   time order, paced over `--seconds`. Meanwhile a fault thread injects, at random times
   (seeded): `--kills` SIGKILLs of a random worker (restarted at once, as Kubernetes
   would), one Kafka broker stop/start (the producer holds its records while the broker is
   away, as a model server's logger would), Elasticsearch down 60 s, MLflow down 60 s. A
   worker that exits by itself is restarted too, and reported.
3. **Compared**, once every window arrived and the group has committed all input:
   - `identical`: the newest revision of each window on `predlog.windows` equals the
     replay's newest one field for field (the revision number aside: it counts label
     arrivals, which differ between a file and a topic), and no window is extra;
   - `lost`: windows missing, plus prediction documents missing from Elasticsearch
     (documents + `es_rejected` dead letters = the replay's `predictions.jsonl` rows), plus
     poison records without their dead letter;
   - `duplicated`: `predlog.windows` records beyond one per (window, revision), plus MLflow
     runs beyond one per window.

Prints the faults with their outcomes, the checks, and ends with one line
`chaos: identical=<yes|no> lost=<n> duplicated=<n> faults=<n>`; the exit status is 0 only
for identical=yes lost=0 duplicated=0 (`--allow-duplicates`: duplicated may be > 0;
`predlog.windows` is at-least-once, README "Known limits"). All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import heapq
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WINDOW = 7 * 86400.0
HORIZON = 800 * 86400.0  # longer than the input: every label joins, in both drivers
TTL, LATENESS = 300.0, 60.0
OUTAGE = 60.0  # Elasticsearch and MLflow
BROKER_DOWN = 10.0


def stack_endpoints() -> SimpleNamespace:
    env = os.environ.get

    def port(name: str, default: int) -> int:
        return int(env(f"PREDLOG_STACK_{name}_PORT", default))

    return SimpleNamespace(
        kafka_bootstrap=f"127.0.0.1:{port('KAFKA', 19092)}",
        elasticsearch_url=f"http://127.0.0.1:{port('ES', 19200)}",
        mlflow_url=f"http://127.0.0.1:{port('MLFLOW', 15000)}",
        stack_dir=env("PREDLOG_STACK_DIR", str(ROOT / ".stack")))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- input -----------------------------------------------------------------------------------

@dataclass
class Input:
    logs: Path
    labels: Path
    reference: Path
    model: str
    lines: int
    label_rows: int
    poison_json: int
    poison_string: int


def build_input(work: Path, events: int, run_id: str, poison: int, seed: int) -> Input:
    """`events` log lines of the demo traffic (copies in later years), renamed to a model of
    this run, its labels, and `poison` poison lines of each kind."""
    from agents.demo import reference_with_scores
    from agents.demo_data import generate_demo
    from agents.reference_cli import save_profile
    from stream.drift.reference import ReferenceProfile

    files = generate_demo(work / "data")
    reference = work / "reference.npz"
    frame, roles = reference_with_scores(files)
    save_profile(ReferenceProfile.from_frame(frame, **roles), reference)
    model = f"chaos-{run_id}"
    source = gzip.open(files.logs, "rb").read().splitlines()
    copies = math.ceil(events / len(source))
    rng = random.Random(seed)
    out: list[bytes] = []
    ids: set[str] = set()
    for c in range(copies):
        for line in source:
            if len(out) == events:
                break
            d = json.loads(line)
            h = d["headers"]
            h["ce-requestid"] = rid = f"{h['ce-requestid']}-{c}"
            h["ce-inferenceservicename"] = model
            h["ce-time"] = f"{int(h['ce-time'][:4]) + c}{h['ce-time'][4:]}"
            ids.add(rid)
            out.append(json.dumps(d, separators=(",", ":")).encode())
    # Poison, at places spread over the input: a body that is not JSON (any kind), and a
    # request whose first numeric feature is a string (its response stays valid).
    requests = [i for i, line in enumerate(out) if b"inference.request" in line]
    spots = sorted(rng.sample(requests, min(2 * poison, len(requests))))
    poison_json = poison_string = 0
    for n, i in enumerate(spots):
        d = json.loads(out[i])
        if n % 2 == 0:
            d["headers"]["ce-requestid"] += "-poison"
            d["body"] = d["body"][: len(d["body"]) // 2]  # truncated JSON
            poison_json += 1
        else:
            body = json.loads(d["body"])
            body["data"]["ndarray"][0][0] = "not-a-number"
            d["body"] = json.dumps(body)
            poison_string += 1
        out[i] = json.dumps(d, separators=(",", ":")).encode()
    logs = work / "input.ndjson.gz"
    with gzip.open(logs, "wb", compresslevel=1) as fh:
        fh.write(b"\n".join(out) + b"\n")
    labels = work / "labels.csv"
    rows = 0
    with open(files.labels) as src, open(labels, "w", newline="") as dst:
        w = csv.writer(dst)
        w.writerow(["request_id", "row", "label", "timestamp"])
        for c in range(copies):
            src.seek(0)
            for r in csv.DictReader(src):
                rid = f"{r['request_id']}-{c}"
                if rid in ids:
                    ts = r["timestamp"]
                    w.writerow([rid, r["row"], r["label"], f"{int(ts[:4]) + c}{ts[4:]}"])
                    rows += 1
    return Input(logs, labels, reference, model, len(out), rows, poison_json, poison_string)


def settings_env(inp: Input, stack: SimpleNamespace, run_id: str, label_state: str
                 ) -> dict[str, str]:
    return {"PREDLOG_REFERENCES": f"{inp.model}={inp.reference}",
            "PREDLOG_TASK": "classification",
            "PREDLOG_WINDOW_SECONDS": str(WINDOW),
            "PREDLOG_LABEL_HORIZON_SECONDS": str(HORIZON),
            "PREDLOG_MLFLOW_TRACKING_URI": stack.mlflow_url,
            "PREDLOG_LABEL_STATE": label_state,
            # one index per model, not per day: years of daily indices would pass the
            # cluster's shard limit (1,000 per node), and the shared stack's with them
            "PREDLOG_ELASTICSEARCH_INDEX_TEMPLATE":
                f"itc{run_id}-predictions-{{namespace}}-{{model}}"}


def expected_windows(inp: Input, work: Path) -> tuple[dict[tuple, dict], int]:
    """The replay's newest summary of each window, and its prediction rows."""
    from agents.replay import ReplayOptions, replay_files
    from agents.settings import Settings

    settings = Settings(window_seconds=WINDOW, pairing_ttl_seconds=TTL,
                        allowed_lateness_seconds=LATENESS, label_horizon_seconds=HORIZON,
                        references=f"{inp.model}={inp.reference}", task="classification")
    out = work / "replay"
    replay_files([inp.logs], settings, out, ReplayOptions(labels=[inp.labels], mlflow=False))
    newest: dict[tuple, dict] = {}
    for line in open(out / "windows.jsonl", "rb"):
        s = json.loads(line)
        key = window_key(s)
        if s["revision"] >= newest.get(key, {}).get("revision", -1):
            newest[key] = s
    with open(out / "predictions.jsonl", "rb") as fh:
        documents = sum(1 for _ in fh)
    return newest, documents


def window_key(s: dict) -> tuple:
    return (s["namespace"], s["model"], s["version"], s["node"], s["window_start"])


def timed_records(inp: Input) -> list[tuple[int, str, bytes, bytes, list, int]]:
    """(time ms, topic kind, key, value, headers, timestamp ms) of every event and label,
    in time order; lines no decoder reads go to the events topic as they are (poison)."""
    from agents.sources import iter_file_lines
    from agents.to_kafka import line_to_record, record_timestamp_ms
    from stream.events import DeadLetter
    from stream.eventtime import parse_rfc3339

    events = []
    last_ms = 0
    for line, coords in iter_file_lines([inp.logs]):
        rec = line_to_record(line, coords)
        if isinstance(rec, DeadLetter):  # poison: what ingest would have passed on
            d = json.loads(line)
            headers = [(k.replace("-", "_") if k.startswith("ce-") else k, v.encode())
                       for k, v in d["headers"].items()]
            events.append((last_ms, "events", d["headers"]["ce-requestid"].encode(),
                           d["body"].encode(), headers, last_ms))
            continue
        ms = record_timestamp_ms(rec)
        last_ms = ms
        events.append((ms, "events", rec.key, rec.value, list(rec.headers), ms))
    labels = []
    with open(inp.labels) as fh:
        for r in csv.DictReader(fh):
            ms = parse_rfc3339(r["timestamp"]) // 1_000_000
            value = json.dumps({"request_id": r["request_id"], "row": int(r["row"]),
                                "label": int(r["label"]), "timestamp": r["timestamp"]})
            labels.append((ms, "labels", r["request_id"].encode(), value.encode(), [], ms))
    labels.sort(key=lambda x: x[0])
    return list(heapq.merge(events, labels, key=lambda x: x[0]))


# -- the live run ----------------------------------------------------------------------------

@dataclass
class Fault:
    at: float  # planned, seconds after the start of production
    kind: str
    target: str = ""
    started: float | None = None
    outcome: str = ""


@dataclass
class Live:
    dep: object
    env: dict
    workers: dict = field(default_factory=dict)  # slot -> Popen
    restarts: Counter = field(default_factory=Counter)
    self_exits: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, slot: int) -> None:
        data = Path(self.dep.stack.stack_dir) / f"chaos-{self.dep.suffix}-w{slot}"
        proc, _ = self.dep.start_worker({**self.env, "PREDLOG_DATA_DIR": str(data)},
                                        ready="/healthz")
        self.workers[slot] = proc

    def kill(self, slot: int) -> str:
        with self.lock:
            self.dep.kill(self.workers[slot], signal.SIGKILL)
            self.restarts[slot] += 1
            t = time.monotonic()
            try:
                self.start(slot)
            except RuntimeError as exc:  # the watcher tries again
                return f"restart failed ({exc}); left to the watcher"
            return f"restarted, up in {time.monotonic() - t:.1f} s"

    def watch(self, stop: threading.Event) -> None:
        """Restart a worker that exited by itself (restartPolicy: Always)."""
        while not stop.wait(2.0):
            with self.lock:
                for slot, proc in list(self.workers.items()):
                    if proc.poll() is not None and not stop.is_set():
                        if proc.returncode != -signal.SIGKILL:  # not one of the harness's
                            self.self_exits.append((slot, proc.returncode))
                        log(f"worker {slot} exited ({proc.returncode}); restarting")
                        try:
                            self.start(slot)
                        except RuntimeError as exc:
                            log(f"worker {slot} restart failed: {exc}")


def stack_service(action: str, service: str) -> None:
    subprocess.run([str(ROOT / "deploy/stack/stack.sh"), action, service], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=300)


class Producer:
    """Sends the records in time order, paced over `seconds`; holds them (flushed) while
    the broker is away."""

    def __init__(self, bootstrap: str, topics: dict, records: list, seconds: float) -> None:
        from kafka import KafkaProducer

        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                      retries=20, max_in_flight_requests_per_connection=1,
                                      reconnect_backoff_max_ms=2000)
        self.topics, self.records, self.seconds = topics, records, seconds
        self.hold = threading.Event()  # set: stop sending, flush, report `held`
        self.held = threading.Event()
        self.failures: list = []
        self.sent = self.resent = 0

    def run(self) -> None:
        slices = 400
        step = max(1, math.ceil(len(self.records) / slices))
        t0 = time.monotonic()
        for i in range(0, len(self.records), step):
            if self.hold.is_set():
                self.producer.flush()
                self.held.set()
                while self.hold.is_set():
                    time.sleep(0.2)
                self.held.clear()
            self._send_slice(self.records[i:i + step])
            self.sent = min(len(self.records), i + step)
            pause = t0 + self.seconds * self.sent / len(self.records) - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self.producer.flush()

    def _send_slice(self, records: list, attempts: int = 30) -> None:
        """Send, flush and send again what failed (a broker that just came back may refuse
        for a while): a model server's logger resends too. Records that failed 30 times
        stay in `failures`, counted as lost by the report."""
        for attempt in range(attempts):
            futures = [(rec, self.producer.send(self.topics[rec[1]], key=rec[2], value=rec[3],
                                                headers=rec[4], timestamp_ms=rec[5]))
                       for rec in records]
            self.producer.flush()
            records = [rec for rec, fut in futures if fut.failed()]
            if not records:
                return
            self.resent += len(records)
            time.sleep(min(2.0, 0.2 * (attempt + 1)))
        self.failures += records

    def send_now(self, topic: str, records) -> None:
        for p, key, value, headers in records:
            self.producer.send(topic, key=key, value=value, headers=headers, partition=p)
        self.producer.flush()


def run_faults(faults: list[Fault], live: Live, producer: Producer, t0: float,
               rng: random.Random) -> None:
    """Each fault on its own thread at its time: a slow restart delays no other fault."""
    slots = {id(f): rng.choice(sorted(live.workers)) for f in faults}

    def one(f: Fault) -> None:
        delay = t0 + f.at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        f.started = time.monotonic() - t0
        try:
            if f.kind == "sigkill":
                slot = slots[id(f)]
                f.target = f"worker {slot}"
                log(f"SIGKILL worker {slot}")
                f.outcome = live.kill(slot)
            else:
                outage(f, producer)
        except Exception as exc:  # noqa: BLE001 - reported in the table
            f.outcome = f"failed: {exc!r}"[:120]

    threads = [threading.Thread(target=one, args=(f,), daemon=True) for f in faults]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def outage(f: Fault, producer: Producer) -> None:
    service, seconds = {"kafka-broker": ("kafka", BROKER_DOWN),
                        "elasticsearch-down": ("elasticsearch", OUTAGE),
                        "mlflow-down": ("mlflow", OUTAGE)}[f.kind]
    f.target = service
    if service == "kafka":
        producer.hold.set()
        producer.held.wait(timeout=120)
    log(f"{service} down for {seconds:.0f} s")
    try:
        stack_service("down", service)
        time.sleep(seconds)
        t = time.monotonic()
        stack_service("up", service)
    finally:
        if service == "kafka":
            producer.hold.clear()
    f.outcome = f"down {seconds:.0f} s, back up in {time.monotonic() - t:.1f} s"
    log(f"{service} up again")


class WindowsReader:
    """Everything on the windows topic, read from the start by a background thread."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.records: list[dict] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(self.topic, bootstrap_servers=self.bootstrap,
                                 auto_offset_reset="earliest", group_id=None,
                                 reconnect_backoff_max_ms=2000)
        try:
            while not self.stop.is_set():
                try:
                    for batch in consumer.poll(timeout_ms=1000).values():
                        self.records += [json.loads(r.value) for r in batch]
                except Exception as exc:  # noqa: BLE001 - the broker may be away for a while
                    log(f"windows reader: {exc!r}")
                    time.sleep(1)
        finally:
            consumer.close()

    def newest(self, model: str) -> dict[tuple, dict]:
        out: dict[tuple, dict] = {}
        for s in list(self.records):
            if s["model"] == model:
                key = window_key(s)
                if s.get("revision", 0) >= out.get(key, {}).get("revision", -1):
                    out[key] = s
        return out


def _without_revision(s: dict) -> dict:
    return {k: v for k, v in s.items() if k != "revision"}


# The consumer group that reads each topic: the labels topic is read by the re-key stage's
# own group (`agents.rekey`), which puts the labels on the events topic.
GROUP_SUFFIX = {"labels": "-rekey"}


def committed_all(dep, names: tuple[str, ...], ends: dict | None = None) -> bool:
    """Has the group that reads each of these topics committed all of it (with `ends`, for
    the topics it names: at least up to those end offsets, taken earlier)?"""
    from kafka import KafkaConsumer, TopicPartition

    for name in names:
        consumer = KafkaConsumer(bootstrap_servers=dep.stack.kafka_bootstrap,
                                 group_id=f"it{dep.suffix}{GROUP_SUFFIX.get(name, '')}",
                                 enable_auto_commit=False)
        try:
            topic = dep.topics[name]
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            until = (ends or {}).get(name) or consumer.end_offsets(tps)
            if any((consumer.committed(tp) or 0) < until.get(tp, 0) for tp in tps):
                return False
        finally:
            consumer.close()
    return True


def end_offsets(dep, name: str) -> dict:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=dep.stack.kafka_bootstrap)
    try:
        topic = dep.topics[name]
        return consumer.end_offsets([TopicPartition(topic, p)
                                     for p in consumer.partitions_for_topic(topic) or ()])
    finally:
        consumer.close()


def dead_letters(bootstrap: str, topic: str) -> Counter:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    reasons: Counter = Counter()
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        for batch in consumer.poll(timeout_ms=1000).values():
            for r in batch:
                reasons[dict(r.headers).get("predlog-dlq-reason", b"?").decode()] += 1
    consumer.close()
    return reasons


def es_documents(url: str, pattern: str) -> int:
    from elasticsearch import Elasticsearch

    es = Elasticsearch(url, request_timeout=60)
    es.indices.refresh(index=pattern, allow_no_indices=True)
    return int(es.count(index=pattern, allow_no_indices=True)["count"])


def mlflow_runs(url: str, model: str) -> tuple[int, int]:
    """(runs, distinct window ids) in the model's monitoring experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    exp = client.get_experiment_by_name(f"{model}-production-monitoring")
    if exp is None:
        return 0, 0
    runs, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
        runs += page
        token = page.token
        if not token:
            break
    return len(runs), len({r.data.tags.get("predlog.window_id") for r in runs})


def cleanup(stack: SimpleNamespace, prefix: str, model: str, dep) -> None:
    """Leave the shared stack as it was: the run's indices, topics and MLflow experiment go."""
    from elasticsearch import Elasticsearch
    from kafka.admin import KafkaAdminClient
    from mlflow.tracking import MlflowClient

    Elasticsearch(stack.elasticsearch_url, request_timeout=60).indices.delete(
        index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="all")
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        group = f"it{dep.suffix}"
        admin.delete_topics([t for t in admin.list_topics()
                             if t.startswith(prefix + ".") or t.startswith(group + "-")])
    except Exception as exc:  # noqa: BLE001 - what is left is only disk space
        log(f"topics not deleted: {exc!r}")
    finally:
        admin.close()
    client = MlflowClient(stack.mlflow_url)
    exp = client.get_experiment_by_name(f"{model}-production-monitoring")
    if exp is not None:
        client.delete_experiment(exp.experiment_id)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="log lines of input")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=None,
                    help="pace production over this long (default: 60 s per 100k events, "
                         "at least 180 s)")
    ap.add_argument("--poison", type=int, default=5, help="poison records of each kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label-state", choices=("memory", "disk"), default="memory")
    ap.add_argument("--no-outages", action="store_true",
                    help="kills only: no broker, Elasticsearch or MLflow outage")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds to wait for the results after production (default: "
                         "300 s + 60 s per 100k events)")
    ap.add_argument("--allow-duplicates", action="store_true",
                    help="exit 0 with duplicated > 0 (predlog.windows is at-least-once)")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--keep", action="store_true",
                    help="keep the run's topics, indices and MLflow experiment (to look)")
    args = ap.parse_args(argv)
    from tests.fixtures.seldon_stream import flush_records
    from tests.integration.workers import PARTITIONS, Deployment

    stack = stack_endpoints()
    rng = random.Random(args.seed)
    run_id = uuid.uuid4().hex[:8]
    work = args.work or Path(stack.stack_dir) / f"chaos-{run_id}"
    work.mkdir(parents=True, exist_ok=True)
    seconds = args.seconds or max(180.0, 60.0 * args.events / 100_000)
    timeout = args.timeout or 300.0 + 60.0 * args.events / 100_000
    t_all = time.monotonic()

    log(f"input: {args.events:,} events (work dir {work})")
    inp = build_input(work, args.events, run_id, args.poison, args.seed)
    log(f"input: {inp.lines:,} lines, {inp.label_rows:,} labels, poison {inp.poison_json} "
        f"not JSON + {inp.poison_string} string features")
    t = time.monotonic()
    expected, documents = expected_windows(inp, work)
    log(f"replay: {len(expected)} windows, {documents:,} prediction documents "
        f"in {time.monotonic() - t:.0f} s")
    records = timed_records(inp)

    dep = Deployment(stack, window=WINDOW, ttl=TTL, lateness=LATENESS, suffix=f"c{run_id}")
    dep.create_topics()
    env = settings_env(inp, stack, run_id, args.label_state)
    live = Live(dep, env)
    faults = [Fault(rng.uniform(0.05, 0.95) * seconds, "sigkill") for _ in range(args.kills)]
    if not args.no_outages:
        faults += [Fault(0.25 * seconds, "kafka-broker"),
                   Fault(0.4 * seconds, "elasticsearch-down"),
                   Fault(0.6 * seconds, "mlflow-down")]
    reader = WindowsReader(stack.kafka_bootstrap, dep.topics["windows"])
    stop_watch = threading.Event()
    result_line = "chaos: identical=no lost=? duplicated=? faults=0"
    try:
        for slot in (0, 1):
            live.start(slot)
        watcher = threading.Thread(target=live.watch, args=(stop_watch,), daemon=True)
        watcher.start()
        producer = Producer(stack.kafka_bootstrap, dep.topics, records, seconds)
        t0 = time.monotonic()
        sender = threading.Thread(target=producer.run, daemon=True)
        sender.start()
        run_faults(faults, live, producer, t0, rng)
        sender.join()
        end_s = max(r[0] for r in records) / 1000 + WINDOW + 3600
        producer.send_now(dep.topics["events"], flush_records(end_s, PARTITIONS))
        log(f"produced {producer.sent:,} records in {time.monotonic() - t0:.0f} s "
            f"({producer.resent} sent again, {len(producer.failures)} failed); waiting for the "
            "results")
        deadline = time.monotonic() + timeout
        # The end of input, as a stream can tell it: once every label was read, a record far
        # past the label horizon takes each window's last labels into a last revision (what
        # replay emits at the end of its input) and lets the workers forget them.
        # (Labels first: the re-key stage puts them on the events topic.)
        while not committed_all(dep, ("labels", "events")):
            if time.monotonic() > deadline:
                log("not every label and event was committed in time: ending the input anyway")
                break
            time.sleep(5)
        producer.send_now(dep.topics["events"],
                          flush_records(end_s + HORIZON + 2 * WINDOW, PARTITIONS))
        deadline = max(deadline, time.monotonic() + 120)  # time for the last revisions
        # Stage 1 sends stage 2 watermark heartbeats every second, so `pairs` never stops
        # growing: the window stage has caught up when it committed what was there 5 s ago.
        pairs_before = end_offsets(dep, "pairs")
        while time.monotonic() < deadline:
            got = reader.newest(inp.model)
            same = all(key in got and _without_revision(got[key]) == _without_revision(s)
                       for key, s in expected.items())
            if same and committed_all(dep, ("labels", "events", "pairs"),
                                      {"pairs": pairs_before}):
                break
            time.sleep(5)
            pairs_before = end_offsets(dep, "pairs")
        time.sleep(10)  # a last re-emission, if any, arrives
        waited = time.monotonic() - t0
    finally:
        stop_watch.set()
        dep.stop()
        reader.stop.set()
        reader.thread.join(timeout=30)

    # -- checks --------------------------------------------------------------------------
    got = reader.newest(inp.model)
    differing = [k for k in expected
                 if k in got and _without_revision(got[k]) != _without_revision(expected[k])]
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    per_revision = Counter((window_key(s), s.get("revision", 0)) for s in reader.records
                           if s["model"] == inp.model)
    window_dups = sum(n - 1 for n in per_revision.values())
    reasons = dead_letters(stack.kafka_bootstrap, dep.topics["dlq"])
    rejected = reasons.get("es_rejected", 0)
    docs = es_documents(stack.elasticsearch_url, f"itc{run_id}-predictions-*-{inp.model}")
    docs_missing = max(0, documents - rejected - docs)
    docs_extra = max(0, docs + rejected - documents)
    poison_missing = max(0, inp.poison_json - reasons.get("invalid_json", 0))
    poison_again = max(0, reasons.get("invalid_json", 0) - inp.poison_json)  # read again
    runs, run_windows = mlflow_runs(stack.mlflow_url, inp.model)
    run_dups = runs - run_windows
    identical = not differing and not missing and not extra
    lost = len(missing) + docs_missing + poison_missing
    duplicated = window_dups + docs_extra + run_dups + poison_again

    print("\nfaults (seconds after production started):")
    print(f"  {'at':>7}  {'fault':<20} {'target':<14} outcome")
    for f in sorted(faults, key=lambda f: f.started or 0):
        print(f"  {f.started or 0:7.1f}  {f.kind:<20} {f.target:<14} {f.outcome}")
    for slot, rc in live.self_exits:
        print(f"  {'':>7}  {'exited by itself':<20} {'worker ' + str(slot):<14} rc {rc}, "
              "restarted")
    print("\nchecks:")
    rows = [
        ("input records the harness failed to send (run invalid if > 0)",
         f"{len(producer.failures)} ({producer.resent} sent again)", not producer.failures),
        ("windows (newest revision) equal to replay",
         f"{len(expected) - len(differing) - len(missing)} of {len(expected)}",
         not differing and not missing),
        ("windows missing / extra", f"{len(missing)} / {len(extra)}", not missing and not extra),
        ("predlog.windows records beyond one per (window, revision)", str(window_dups),
         window_dups == 0),
        ("Elasticsearch documents + es_rejected = replay's rows",
         f"{docs:,} + {rejected} vs {documents:,}", docs_missing == 0 and docs_extra == 0),
        ("dead letters invalid_json = not-JSON poison",
         f"{reasons.get('invalid_json', 0)} vs {inp.poison_json}",
         not poison_missing and not poison_again),
        ("es_rejected <= string-feature poison", f"{rejected} vs {inp.poison_string}",
         rejected <= inp.poison_string),
        ("MLflow runs = windows", f"{runs} runs, {run_windows} windows",
         run_dups == 0),
    ]
    for name, value, ok in rows:
        print(f"  {'ok ' if ok else 'BAD'}  {name:<58} {value}")
    print(f"  dead letters by reason: {dict(reasons)}")
    for k in differing[:3]:
        a, b = _without_revision(got[k]), _without_revision(expected[k])
        fields = sorted(f for f in set(a) | set(b) if a.get(f) != b.get(f))
        print(f"  differs: {k}: fields {fields}")
        for f in fields[:2]:
            print(f"    worker {f}: {json.dumps(a.get(f))[:300]}")
            print(f"    replay {f}: {json.dumps(b.get(f))[:300]}")
    if not args.keep:
        cleanup(stack, f"itc{run_id}", inp.model, dep)
    print(f"\nwall time: {time.monotonic() - t_all:.0f} s in all, {waited:.0f} s live")
    result_line = (f"chaos: identical={'yes' if identical else 'no'} lost={lost} "
                   f"duplicated={duplicated} faults={len(faults) + len(live.self_exits)}")
    print(result_line, flush=True)
    ok = (identical and lost == 0 and not producer.failures
          and (duplicated == 0 or args.allow_duplicates))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
