"""`predlog ingest` under load: accepted events/s and response times of one ingest process.

    deploy/tools/ensure-tools.sh --bench    # wrk, from Debian's packages
    .venv/bin/python bench/ingest_bench.py [--seconds 30] [--concurrency 64] [--threads 1]

Needs the local stack's Kafka (`predlog stack up`; port from PREDLOG_STACK_KAFKA_PORT,
default 19092). Creates its own events and dead-letter topics, starts one
`predlog ingest` process on a free 127.0.0.1 port, and drives it with wrk (a C load
client: a Python client saturated at ~1,000 requests/s here, below the server) over
`--concurrency` keep-alive connections: Seldon v1 binary-mode CloudEvents, a request and
its response per prediction, each with its own request id. The load lasts `--seconds`
and goes to 127.0.0.1 only. It then counts the records in the events topic: every 202 must have
its record (`lost` = 202 responses − records, must be 0), and nothing else may be there.

Prints events/s accepted, p50/p99/max response time (ms, wrk's), the status codes, and one line
`ingest: events/s=<n> p50_ms=<x> p99_ms=<y> lost=<n>`. The client and the server share
this machine's cores, so the figure is a floor for the server alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


# wrk's script: each request is a new prediction's request or response event (its own
# request id), a thread's statuses are counted, and `done` prints one parseable line.
WRK_SCRIPT = r"""
local counter, threads = 0, {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  statuses = {}
  tid = wrk.thread:get("id")
end
local REQ = '{"data": {"names": ["a", "b", "c"], "ndarray": [[1.0, 2.5, 3.0]]}}'
local RESP = '{"data": {"names": ["p"], "ndarray": [[0.25]]}, "meta": {}}'
function request()
  counter = counter + 1
  local n = math.floor(counter / 2)
  local rid = "bench-" .. tid .. "-" .. n
  local kind = (counter % 2 == 1) and "request" or "response"
  local headers = {
    ["Content-Type"] = "application/json", ["Ce-Id"] = rid .. "-" .. kind,
    ["Ce-Specversion"] = "1.0", ["Ce-Type"] = "io.seldon.serving.inference." .. kind,
    ["Ce-Source"] = "http://bench/", ["Ce-Requestid"] = rid,
    ["Ce-Modelid"] = "classifier", ["Ce-Inferenceservicename"] = "bench-model",
    ["Ce-Namespace"] = "bench", ["Ce-Endpoint"] = "default",
    ["Ce-Time"] = "2026-12-04T10:00:00.123456Z"}
  return wrk.format("POST", "/", headers, kind == "request" and REQ or RESP)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local st = thread:get("statuses")
    for code, n in pairs(st) do merged[code] = (merged[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(merged) do table.insert(parts, code .. "=" .. n) end
  io.write(string.format("RESULT requests=%d seconds=%.3f p50_us=%d p99_us=%d max_us=%d "
    .. "errors=%d statuses=%s\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, table.concat(parts, ",")))
end
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load(url: str, seconds: float, concurrency: int, threads: int) -> dict[str, str]:
    """Run wrk against `url` for `seconds`; its RESULT line as a dict."""
    script = Path(tempfile.mkdtemp()) / "ingest.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds:.0f}s",
                          "--timeout", "10s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return dict(kv.split("=", 1) for kv in line.split()[1:])


def _records_in(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        starts = consumer.beginning_offsets(parts)
        return sum(ends[tp] - starts[tp] for tp in parts)
    finally:
        consumer.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: run deploy/tools/ensure-tools.sh --bench (as root)")
    from kafka.admin import KafkaAdminClient, NewTopic

    bootstrap = f"127.0.0.1:{os.environ.get('PREDLOG_STACK_KAFKA_PORT', '19092')}"
    suffix = uuid.uuid4().hex[:8]
    events, dlq = f"bench{suffix}.events", f"bench{suffix}.dlq"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(events, 4, 1), NewTopic(dlq, 1, 1)])
    port = _free_port()
    env = dict(os.environ, PREDLOG_KAFKA_BOOTSTRAP=bootstrap, PREDLOG_TOPIC_EVENTS=events,
               PREDLOG_TOPIC_DLQ=dlq, PREDLOG_INGEST_PORT=str(port), PYTHONPATH=str(ROOT))
    profile = ["-m", "cProfile", "-o", os.environ["INGEST_PROFILE"]] \
        if os.environ.get("INGEST_PROFILE") else []
    server = subprocess.Popen([sys.executable, *profile, "-m", "agents.cli", "ingest"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("ingest did not become ready")
        cpu0 = _cpu(server.pid)
        result = _load(f"http://127.0.0.1:{port}/", args.seconds, args.concurrency,
                       args.threads)
        server_cpu = _cpu(server.pid) - cpu0
    finally:
        server.terminate()
        server.wait(timeout=60)
    records = _records_in(bootstrap, events)
    admin.delete_topics([events, dlq])
    admin.close()
    statuses = Counter({int(k): int(v) for k, v in
                        (kv.split("=") for kv in result["statuses"].split(",") if kv)})
    wall = float(result["seconds"])
    accepted = statuses.get(202, 0)
    p50, p99, top = (int(result[k]) / 1000 for k in ("p50_us", "p99_us", "max_us"))
    print(f"requests             {int(result['requests']):,} in {wall:.1f} s, concurrency "
          f"{args.concurrency}, statuses {dict(sorted(statuses.items()))}, "
          f"socket errors {result['errors']}")
    print(f"accepted events/s    {accepted / wall:,.0f}")
    print(f"response time        p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms")
    print(f"ingest process CPU   {server_cpu:.1f} s ({server_cpu / wall:.0%} of one core; "
          f"{server_cpu / max(accepted, 1) * 1e6:.0f} µs per accepted event)")
    # Requests still in flight when wrk stopped were produced but never answered: records
    # beyond the 202s are those, never a loss.
    print(f"records in Kafka     {records:,} (202 responses {accepted:,}; in flight at the "
          f"end {max(0, records - accepted):,})")
    print(f"ingest: events/s={accepted / wall:.0f} p50_ms={p50:.1f} p99_ms={p99:.1f} "
          f"lost={max(0, accepted - records)}")


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
