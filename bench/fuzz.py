"""Hostile input through both of predlog's front doors: nothing crashes, everything counts.

    .venv/bin/python bench/fuzz.py [--inputs 100000] [--seed 0] [--path http|kafka|both]

Needs the local stack's Kafka (`predlog stack up`; PREDLOG_STACK_KAFKA_PORT, default
19092). Inputs come from `tests/fixtures/hostile.py` (deterministic for a seed): about
one in five valid, the rest truncated JSON, deep nesting, huge numbers, NaN/infinity,
wrong types, invalid UTF-8, bodies over the size limit, bad CloudEvent headers, wrong
content types, random bytes, broken protobuf, bad labels.

- **http**: one `predlog ingest` (body limit 64 KiB) on its own topics gets `--inputs`
  POSTs. Checked: the process is alive; every response is 202, 400 or 413; the ingest's
  counters add up (accepted + rejected = requests that reached it); every 202 has its
  record in the events topic and every rejection its record in the dead-letter topic.
  Requests refused by the HTTP parser itself (a header over aiohttp's 8 KiB field limit)
  never reach predlog and are reported on their own line.
- **kafka**: one `predlog worker` on its own topics; `--inputs` records go to a Seldon v1
  Kafka-mode topic, a Seldon v2 model topic, the labels topic and the events topic.
  Checked from the worker's /metrics once it consumed them all: the process is alive,
  and for every topic `predlog_events_consumed` = `predlog_events_decoded` +
  `predlog_dead_letters` from that topic; the dead-letter topic holds one record per
  dead letter counted.

Ends with one line: `fuzz: inputs=<n> crashes=<n> unaccounted=<n>` (both 0 to pass; the
exit status is non-zero otherwise). All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_BODY = 64 * 1024


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited ({proc.returncode}) before it was ready")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url}: not ready in {seconds:.0f} s")


def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text exposition → {(name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _sum(metrics: dict, name: str, **match: str) -> float:
    return sum(v for (n, labels), v in metrics.items()
               if n == name and all(dict(labels).get(k) == x for k, x in match.items()))


def _records_in(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends, starts = consumer.end_offsets(parts), consumer.beginning_offsets(parts)
        return sum(ends[tp] - starts[tp] for tp in parts)
    finally:
        consumer.close()


class Report:
    def __init__(self) -> None:
        self.crashes = 0
        self.unaccounted = 0

    def check(self, what: str, ok: bool, detail: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {detail}")
        if not ok:
            self.unaccounted += 1


async def _post_all(url: str, inputs, concurrency: int) -> tuple[Counter, int]:
    import aiohttp

    statuses: Counter = Counter()
    parser_refused = 0
    queue: asyncio.Queue = asyncio.Queue()
    for item in inputs:
        queue.put_nowait(item)

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal parser_refused
        while not queue.empty():
            headers, body = queue.get_nowait()
            async with session.post(url, data=body, headers=headers) as resp:
                text = await resp.read()
                statuses[resp.status] += 1
                if resp.status == 400 and not text.startswith(b"{"):
                    parser_refused += 1  # aiohttp's own 400, before predlog's handler

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        await asyncio.gather(*(client(s) for _ in range(concurrency)))
    return statuses, parser_refused


def fuzz_http(bootstrap: str, n: int, seed: int, report: Report) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    from tests.fixtures.hostile import http_inputs

    suffix = uuid.uuid4().hex[:8]
    events, dlq = f"fuzz{suffix}.events", f"fuzz{suffix}.dlq"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(events, 4, 1), NewTopic(dlq, 1, 1)])
    port = _free_port()
    env = dict(os.environ, PREDLOG_KAFKA_BOOTSTRAP=bootstrap, PREDLOG_TOPIC_EVENTS=events,
               PREDLOG_TOPIC_DLQ=dlq, PREDLOG_INGEST_PORT=str(port),
               PREDLOG_INGEST_MAX_BODY_BYTES=str(MAX_BODY), PYTHONPATH=str(ROOT))
    log = tempfile.NamedTemporaryFile(prefix="fuzz-ingest-", suffix=".log", delete=False)
    server = subprocess.Popen([sys.executable, "-m", "agents.cli", "ingest"], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", server, 60)
        statuses, parser_refused = asyncio.run(_post_all(
            f"http://127.0.0.1:{port}/", http_inputs(n, seed, oversize=2 * MAX_BODY), 32))
        metrics = _metrics(f"http://127.0.0.1:{port}/metrics")
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=60)
    records, dead = _records_in(bootstrap, events), _records_in(bootstrap, dlq)
    admin.delete_topics([events, dlq])
    admin.close()
    accepted = _sum(metrics, "predlog_ingest_events_accepted_total")
    rejected = _sum(metrics, "predlog_ingest_events_rejected_total")
    sent = sum(statuses.values())
    print(f"http: {sent:,} requests in {time.monotonic() - t0:.0f} s, statuses "
          f"{dict(sorted(statuses.items()))} (ingest log {log.name})")
    if not alive:
        report.crashes += 1
    report.check("ingest alive", alive, f"exit code {server.returncode}" if not alive else "")
    report.check("responses", set(statuses) <= {202, 400, 413},
                 f"status codes {sorted(statuses)}")
    report.check("counters", accepted + rejected == sent - parser_refused,
                 f"accepted {accepted:,.0f} + rejected {rejected:,.0f} = "
                 f"{sent - parser_refused:,} reached predlog ({parser_refused:,} refused by the "
                 f"HTTP parser: header over 8 KiB)")
    report.check("202 → events topic", records == statuses[202] == accepted,
                 f"{records:,} records, {statuses[202]:,} responses 202")
    report.check("rejections → dead-letter topic", dead == rejected,
                 f"{dead:,} records, {rejected:,.0f} rejected")


def fuzz_kafka(bootstrap: str, n: int, seed: int, report: Report) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from tests.fixtures.hostile import kafka_inputs

    suffix = uuid.uuid4().hex[:8]
    own = {name: f"fuzz{suffix}.{name}" for name in ("events", "pairs", "windows", "dlq",
                                                    "labels")}
    raw = {"seldon": f"fuzz{suffix}.seldon", "v2": f"seldon.fuzz{suffix}.model.m.inputs",
           "labels": own["labels"], "events": own["events"]}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(t, 2, 1) for t in {*own.values(), *raw.values()}])
    port = _free_port()
    data = tempfile.mkdtemp(prefix="fuzz-worker-")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PREDLOG_KAFKA_BOOTSTRAP=bootstrap,
               PREDLOG_CONSUMER_GROUP=f"fuzz{suffix}", PREDLOG_PARTITIONS="2",
               PREDLOG_TOPIC_EVENTS=own["events"], PREDLOG_TOPIC_PAIRS=own["pairs"],
               PREDLOG_TOPIC_WINDOWS=own["windows"], PREDLOG_TOPIC_DLQ=own["dlq"],
               PREDLOG_TOPIC_LABELS=own["labels"],
               PREDLOG_EXTERNAL_TOPICS_PATTERN=(f"^({re.escape(raw['seldon'])}|"
                                                f"{re.escape(raw['v2'])})$"),
               PREDLOG_ELASTICSEARCH_URL="", PREDLOG_MLFLOW_TRACKING_URI="",
               PREDLOG_PROMETHEUS_PORT=str(port), PREDLOG_DATA_DIR=data,
               PREDLOG_BATCH_SECONDS="0.3")
    log = tempfile.NamedTemporaryFile(prefix="fuzz-worker-", suffix=".log", delete=False)
    worker = subprocess.Popen([sys.executable, "-m", "agents.cli", "worker"], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    sent: Counter = Counter()
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", worker, 90)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                 max_request_size=4 * 1024 * 1024)
        for kind, key, value, headers in kafka_inputs(n, seed, oversize=2 * MAX_BODY):
            producer.send(raw[kind], key=key, value=value, headers=headers)
            sent[raw[kind]] += 1
        producer.flush()
        producer.close()
        # Records the re-key stage forwards come through the events topic too.
        deadline = time.monotonic() + max(120.0, n / 200)
        while time.monotonic() < deadline and worker.poll() is None:
            metrics = _metrics(f"http://127.0.0.1:{port}/metrics")
            external = sum(_sum(metrics, "predlog_events_consumed_total", topic=t)
                           for t in (raw["seldon"], raw["v2"], raw["labels"]))
            forwarded = sum(_sum(metrics, "predlog_events_decoded_total", topic=t)
                            for t in (raw["seldon"], raw["v2"], raw["labels"]))
            events = _sum(metrics, "predlog_events_consumed_total", topic=raw["events"])
            if (external >= n - sent[raw["events"]]
                    and events >= sent[raw["events"]] + forwarded):
                break
            time.sleep(2)
        alive = worker.poll() is None
        metrics = _metrics(f"http://127.0.0.1:{port}/metrics") if alive else {}
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=60)
    dead_records = _records_in(bootstrap, own["dlq"])
    admin.delete_topics(list({*own.values(), *raw.values()}))
    admin.close()
    print(f"kafka: {n:,} records in {time.monotonic() - t0:.0f} s, "
          f"{dict(sorted(sent.items()))} (worker log {log.name})")
    if not alive:
        report.crashes += 1
    report.check("worker alive", alive, f"exit code {worker.returncode}" if not alive else "")
    dead_total = 0.0
    for topic in (raw["seldon"], raw["v2"], raw["labels"], raw["events"]):
        consumed = _sum(metrics, "predlog_events_consumed_total", topic=topic)
        decoded = _sum(metrics, "predlog_events_decoded_total", topic=topic)
        dead = _sum(metrics, "predlog_dead_letters_total", source=topic)
        dead_total += dead
        expected = sent[topic] + (_sum(metrics, "predlog_events_decoded_total", topic=raw["seldon"])
                                  + _sum(metrics, "predlog_events_decoded_total", topic=raw["v2"])
                                  + _sum(metrics, "predlog_events_decoded_total",
                                         topic=raw["labels"])
                                  if topic == raw["events"] else 0)
        report.check(f"{topic}", consumed == decoded + dead == expected,
                     f"consumed {consumed:,.0f} = decoded {decoded:,.0f} + dead letters "
                     f"{dead:,.0f} (expected {expected:,.0f})")
    report.check("dead-letter topic", dead_records == dead_total,
                 f"{dead_records:,} records, {dead_total:,.0f} dead letters counted")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--path", choices=("http", "kafka", "both"), default="both")
    args = ap.parse_args()
    bootstrap = f"127.0.0.1:{os.environ.get('PREDLOG_STACK_KAFKA_PORT', '19092')}"
    report = Report()
    if args.path in ("http", "both"):
        fuzz_http(bootstrap, args.inputs, args.seed, report)
    if args.path in ("kafka", "both"):
        fuzz_kafka(bootstrap, args.inputs, args.seed, report)
    total = args.inputs * (2 if args.path == "both" else 1)
    print(f"fuzz: inputs={total} crashes={report.crashes} unaccounted={report.unaccounted}")
    sys.exit(1 if report.crashes or report.unaccounted else 0)


if __name__ == "__main__":
    main()
