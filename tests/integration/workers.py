"""Run real `predlog worker` processes against the stack, isolated per test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

PARTITIONS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, seconds: float, what: str) -> None:
    """Poll `url` until it answers 200; raise if `proc` exits first or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace")[-2000:] if proc.stdout else ""
            raise RuntimeError(f"{what} exited ({proc.returncode}) before it was ready {out}")
        time.sleep(0.3)
    raise RuntimeError(f"{what} not ready in {seconds:.0f} s")


@dataclass
class Deployment:
    """One isolated predlog deployment: its own consumer group and topics."""

    stack: object
    window: float = 300.0
    ttl: float = 30.0
    lateness: float = 10.0
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    procs: list = field(default_factory=list)
    logs: list = field(default_factory=list)
    target_files: list = field(default_factory=list)
    extra_env: dict = field(default_factory=dict)  # more PREDLOG_* settings for the workers

    @property
    def topics(self) -> dict[str, str]:
        return {name: f"it{self.suffix}.{name}"
                for name in ("events", "pairs", "windows", "dlq", "labels")}

    def env(self, port: int) -> dict[str, str]:
        t = self.topics
        env = dict(os.environ,
                    PREDLOG_KAFKA_BOOTSTRAP=self.stack.kafka_bootstrap,
                    PREDLOG_CONSUMER_GROUP=f"it{self.suffix}",
                    PREDLOG_TOPIC_EVENTS=t["events"], PREDLOG_TOPIC_PAIRS=t["pairs"],
                    PREDLOG_TOPIC_WINDOWS=t["windows"], PREDLOG_TOPIC_DLQ=t["dlq"],
                    PREDLOG_TOPIC_LABELS=t["labels"],
                    PREDLOG_EXTERNAL_TOPICS_PATTERN=f"^it{self.suffix}\\.external$",
                    PREDLOG_PARTITIONS=str(PARTITIONS),
                    PREDLOG_WINDOW_SECONDS=str(self.window),
                    PREDLOG_PAIRING_TTL_SECONDS=str(self.ttl),
                    PREDLOG_ALLOWED_LATENESS_SECONDS=str(self.lateness),
                    PREDLOG_ELASTICSEARCH_URL=self.stack.elasticsearch_url,
                    PREDLOG_ELASTICSEARCH_INDEX_TEMPLATE=(
                        f"it{self.suffix}-predictions-{{namespace}}-{{model}}-{{date}}"),
                    PREDLOG_PROMETHEUS_PORT=str(port),
                    PREDLOG_BATCH_SECONDS="0.3",
                    PREDLOG_DATA_DIR=str(Path(self.stack.stack_dir) / f"worker-it{self.suffix}"))
        return {**env, **self.extra_env}

    def create_topics(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.stack.kafka_bootstrap)
        try:
            # Kept for ever: the tests (and bench/chaos.py) produce records with their
            # logged event times as Kafka timestamps, years old in the demo's traffic, which
            # the stack's 24 h time retention would delete under the workers mid-run.
            admin.create_topics([NewTopic(n, PARTITIONS, 1, topic_configs={"retention.ms": "-1"})
                                 for n in self.topics.values()])
        finally:
            admin.close()

    def start_worker(self, env: dict | None = None, ready: str = "/readyz"
                     ) -> tuple[subprocess.Popen, int]:
        """A worker with the deployment's settings (and `env` on top), once `ready` answers
        200 (/healthz: up, even while a sink is down and /readyz says 503)."""
        port = free_port()
        log = open(Path(self.stack.stack_dir) / f"worker-it{self.suffix}-{port}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "worker"],
                                env={**self.env(port), **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.logs.append(log)
        wait_ready(f"http://127.0.0.1:{port}{ready}", proc, 60, f"worker (log {log.name})")
        targets = Path(self.stack.stack_dir) / "prometheus" / "targets"
        targets.mkdir(parents=True, exist_ok=True)
        target = targets / f"it{self.suffix}-{port}.json"
        target.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"],
                                       "labels": {"it": self.suffix}}]))
        self.target_files.append(target)
        return proc, port

    def produce(self, records, partitions: bool = False) -> None:
        producer = KafkaProducer(bootstrap_servers=self.stack.kafka_bootstrap, acks="all",
                                 linger_ms=5)
        try:
            for rec in records:
                if partitions:
                    p, key, value, headers = rec
                    producer.send(self.topics["events"], key=key, value=value,
                                  headers=headers, partition=p)
                else:
                    key, value, headers = rec
                    producer.send(self.topics["events"], key=key, value=value, headers=headers)
            producer.flush()
        finally:
            producer.close()

    def windows(self, expected: int, timeout: float = 120.0) -> list[dict]:
        """Consume window summaries until `expected` distinct real windows arrived."""
        consumer = KafkaConsumer(self.topics["windows"],
                                 bootstrap_servers=self.stack.kafka_bootstrap,
                                 auto_offset_reset="earliest", group_id=None,
                                 consumer_timeout_ms=1000)
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=1000).values():
                    got += [json.loads(r.value) for r in batch]
                real = {(s["model"], s["node"], s["window_start"]) for s in got
                        if s["model"] != "flush"}
                if len(real) >= expected:
                    break
        finally:
            consumer.close()
        return [s for s in got if s["model"] != "flush"]

    def _group_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(bootstrap_servers=self.stack.kafka_bootstrap,
                             group_id=f"it{self.suffix}", enable_auto_commit=False)

    def caught_up(self, name: str, timeout: float = 60.0) -> None:
        """Wait until the workers' group has committed every record of a topic."""
        consumer = self._group_consumer()
        tps = [TopicPartition(self.topics[name], p) for p in range(PARTITIONS)]
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ends = consumer.end_offsets(tps)
                if all((consumer.committed(tp) or 0) >= ends[tp] for tp in tps):
                    return
                time.sleep(0.5)
        finally:
            consumer.close()
        raise TimeoutError(f"{name} not committed in {timeout:.0f} s")

    def rewind(self, name: str, fraction: float = 0.5, timeout: float = 90.0) -> None:
        """Set the stopped workers' committed offsets of a topic back, to `fraction` of each
        partition's end (once the broker has seen the group empty: a member that did not
        leave holds it until its session times out)."""
        from kafka.errors import KafkaError

        consumer = self._group_consumer()
        tps = [TopicPartition(self.topics[name], p) for p in range(PARTITIONS)]
        deadline = time.monotonic() + timeout
        try:
            ends = consumer.end_offsets(tps)
            offsets = {tp: OffsetAndMetadata(int(ends[tp] * fraction), "", -1) for tp in tps}
            while True:
                try:
                    consumer.commit(offsets)
                    return
                except KafkaError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
        finally:
            consumer.close()

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        proc.send_signal(sig)
        proc.wait(timeout=60)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for log in self.logs:
            log.close()
        for target in self.target_files:
            target.unlink(missing_ok=True)
