"""Elasticsearch stopped for 30 seconds mid-stream with nothing lost.

One real `predlog worker` consumes the generated stream. Part-way through,
Elasticsearch is stopped with `deploy/stack/elasticsearch.sh stop`; the rest of the
stream and the flush records are produced while it is down. For ~30 s the worker must
stay alive (process running, /healthz answering) while its window stage is held back:
its committed offsets on the pairs topic stop moving with records still behind them,
and not every window has been emitted. Elasticsearch is then started again; every
window summary must equal the numpy oracle and Elasticsearch must hold exactly one
document per request row. Elasticsearch is always restarted (``finally``), so the
tests that follow find it up.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
from kafka import KafkaConsumer, TopicPartition

from tests.fixtures.seldon_stream import START, flush_records, generate, oracle
from tests.integration.test_worker import WINDOW, _check_against_oracle, _es_count
from tests.integration.workers import PARTITIONS, Deployment

REPO = Path(__file__).resolve().parents[2]
ES_SCRIPT = REPO / "deploy" / "stack" / "elasticsearch.sh"
OUTAGE_SECONDS = 30.0


def _es_script(stack, action: str, timeout: float) -> None:
    """Run `elasticsearch.sh ACTION` for the same stack the `stack` fixture points at."""
    env = dict(os.environ, PREDLOG_STACK_DIR=stack.stack_dir,
               PREDLOG_STACK_ES_PORT=str(urlparse(stack.elasticsearch_url).port))
    subprocess.run(["bash", str(ES_SCRIPT), action], env=env, check=True, timeout=timeout,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _es_up(stack) -> bool:
    try:
        return httpx.get(f"{stack.elasticsearch_url}/_cluster/health", timeout=3).is_success
    except httpx.HTTPError:
        return False


def _pairs_offsets(stack, dep: Deployment) -> tuple[dict[int, int], dict[int, int]]:
    """(committed, end) offsets of the worker's group on the pairs topic, per partition."""
    topic = dep.topics["pairs"]
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    # A consumer in the worker's group that never subscribes: it only fetches the
    # group's committed offsets (OffsetFetch) and does not join or rebalance the group.
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap,
                             group_id=f"it{dep.suffix}", enable_auto_commit=False)
    try:
        committed = {tp.partition: consumer.committed(tp) or 0 for tp in tps}
        end = {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close(autocommit=False)
    return {p: committed.get(p, 0) for p in range(PARTITIONS)}, end


def _window_keys(summaries) -> set[tuple]:
    return {(s["model"], s["node"], s["window_start"]) for s in summaries}


def test_elasticsearch_down_30s_mid_stream_loses_nothing(stack):
    stream = generate(n=2000, seconds=1200.0)
    expected = oracle(stream, WINDOW)
    rows = sum(len(r.rows) for r in stream.requests)
    dep = Deployment(stack, window=WINDOW, ttl=30.0, lateness=10.0,
                     extra_env={"PREDLOG_MLFLOW_TRACKING_URI": ""})
    dep.create_topics()
    es_stopped = False
    try:
        proc, port = dep.start_worker()
        # Part 1: the first ~40% of the stream (event time up to ~480 s), enough to close
        # the first window of each model; wait until the worker has emitted those.
        split = next(i for i, rec in enumerate(stream.records)
                     if dict(rec[2])["ce_time"] >= b"2026-11-01T00:08:00")
        dep.produce(stream.records[:split])
        first = {k for k in expected if k[3] == START}
        early = dep.windows(len(first), timeout=60)
        assert len(_window_keys(early)) >= len(first), "the worker did not process part 1"

        # Elasticsearch goes away; the rest of the stream and the flush records arrive.
        _es_script(stack, "stop", timeout=60)
        es_stopped = True
        down_at = time.monotonic()
        assert not _es_up(stack)
        dep.produce(stream.records[split:])
        dep.produce(flush_records(stream.end_time + 3600, PARTITIONS), partitions=True)

        # While it is down: alive and answering, but the window stage is held back.
        samples = []
        while time.monotonic() - down_at < OUTAGE_SECONDS:
            assert proc.poll() is None, f"worker exited while ES was down, see {dep.logs[0].name}"
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            if time.monotonic() - down_at > OUTAGE_SECONDS / 2:
                samples.append(_pairs_offsets(stack, dep))
            time.sleep(2)
        assert len(samples) >= 2
        (committed_a, _), (committed_b, end_b) = samples[0], samples[-1]
        assert committed_a == committed_b, ("the window agent kept committing while "
                                            f"Elasticsearch was down: {committed_a} -> "
                                            f"{committed_b}")
        assert sum(end_b[p] - committed_b[p] for p in end_b) > 0, (committed_b, end_b)
        during = dep.windows(len(expected), timeout=3)
        assert len(_window_keys(during)) < len(expected), \
            "every window was emitted although Elasticsearch was down"
        assert proc.poll() is None
        log_text = Path(dep.logs[0].name).read_text(errors="replace")
        assert "Elasticsearch write failed, retrying" in log_text

        # Elasticsearch is back: the held-back batch goes through, then everything else.
        _es_script(stack, "start", timeout=150)
        es_stopped = False
        summaries = dep.windows(len(expected), timeout=90)
        _check_against_oracle(summaries, expected)
        assert _es_count(stack, dep, expected=rows, timeout=60) == rows
        assert proc.poll() is None
    finally:
        if es_stopped or not _es_up(stack):
            _es_script(stack, "start", timeout=150)
        dep.stop()


def _sink_metrics(port: int) -> dict[tuple[str, str], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, s.labels["sink"]): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name in ("predlog_sink_up", "predlog_sink_retries_total")}


def test_readyz_and_sink_metrics_while_elasticsearch_is_unreachable(stack):
    """The worker writes to Elasticsearch through a proxy that is cut for a while (the shared
    server keeps running for the other tests): /readyz answers 503 naming the sink and
    `predlog_sink_up{sink="elasticsearch"}` is 0 with retries counted while it is cut,
    both recover when it is back, and nothing is lost."""
    from tests.integration.proxy import TcpProxy

    es = urlparse(stack.elasticsearch_url)
    proxy = TcpProxy(es.hostname, es.port)
    stream = generate(n=2000, seconds=1200.0)
    expected = oracle(stream, WINDOW)
    rows = sum(len(r.rows) for r in stream.requests)
    dep = Deployment(stack, window=WINDOW, ttl=30.0, lateness=10.0,
                     extra_env={"PREDLOG_MLFLOW_TRACKING_URI": "",
                                "PREDLOG_ELASTICSEARCH_URL": proxy.url})
    dep.create_topics()
    try:
        proc, port = dep.start_worker()
        ready = f"http://127.0.0.1:{port}/readyz"
        split = next(i for i, rec in enumerate(stream.records)
                     if dict(rec[2])["ce_time"] >= b"2026-11-01T00:08:00")
        dep.produce(stream.records[:split])
        first = {k for k in expected if k[3] == START}
        assert len(_window_keys(dep.windows(len(first), timeout=60))) >= len(first)
        assert httpx.get(ready, timeout=5).status_code == 200
        assert _sink_metrics(port)[("predlog_sink_up", "elasticsearch")] == 1.0

        proxy.cut()
        dep.produce(stream.records[split:])
        dep.produce(flush_records(stream.end_time + 3600, PARTITIONS), partitions=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = httpx.get(ready, timeout=5)
            if r.status_code == 503:
                break
            time.sleep(1)
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "sink_failing" and "elasticsearch" in body["sinks"], body
        metrics = _sink_metrics(port)
        assert metrics[("predlog_sink_up", "elasticsearch")] == 0.0
        assert metrics[("predlog_sink_retries_total", "elasticsearch")] >= 1
        time.sleep(5)  # still retrying, still alive, still not ready
        assert proc.poll() is None
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert httpx.get(ready, timeout=5).status_code == 503
        assert _sink_metrics(port)[("predlog_sink_retries_total", "elasticsearch")] > \
            metrics[("predlog_sink_retries_total", "elasticsearch")]

        proxy.restore()
        _check_against_oracle(dep.windows(len(expected), timeout=90), expected)
        assert _es_count(stack, dep, expected=rows, timeout=60) == rows
        assert httpx.get(ready, timeout=5).status_code == 200
        assert _sink_metrics(port)[("predlog_sink_up", "elasticsearch")] == 1.0
        assert proc.poll() is None
    finally:
        proxy.close()
        dep.stop()


def test_mlflow_unreachable_pauses_the_worker_instead_of_stopping_it(stack):
    """MLflow behind a cut proxy for longer than the 5 attempts the sink used to give up
    after (it then raised into the window stage and stopped the worker): the worker stays
    alive, /readyz names the mlflow sink, and every window comes out once MLflow is back."""
    from tests.integration.proxy import TcpProxy

    mlflow = urlparse(stack.mlflow_url)
    proxy = TcpProxy(mlflow.hostname, mlflow.port)
    stream = generate(n=2000, seconds=1200.0)
    expected = oracle(stream, WINDOW)
    dep = Deployment(stack, window=WINDOW, ttl=30.0, lateness=10.0,
                     extra_env={"PREDLOG_MLFLOW_TRACKING_URI": proxy.url,
                                # MLflow's client retries a refused connection for minutes
                                # before predlog's retry sees it; here it should not.
                                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    dep.create_topics()
    try:
        proc, port = dep.start_worker()
        ready = f"http://127.0.0.1:{port}/readyz"
        split = next(i for i, rec in enumerate(stream.records)
                     if dict(rec[2])["ce_time"] >= b"2026-11-01T00:08:00")
        dep.produce(stream.records[:split])
        first = {k for k in expected if k[3] == START}
        assert len(_window_keys(dep.windows(len(first), timeout=90))) >= len(first)

        proxy.cut()
        dep.produce(stream.records[split:])
        dep.produce(flush_records(stream.end_time + 3600, PARTITIONS), partitions=True)
        cut_at, failing = time.monotonic(), None
        while time.monotonic() - cut_at < 45:
            assert proc.poll() is None, f"worker exited, see {dep.logs[0].name}"
            r = httpx.get(ready, timeout=5)
            if r.status_code == 503 and "mlflow" in r.json().get("sinks", {}):
                failing = r.json()
            time.sleep(2)
        assert failing is not None and failing["status"] == "sink_failing"
        assert _sink_metrics(port)[("predlog_sink_up", "mlflow")] == 0.0
        assert _sink_metrics(port)[("predlog_sink_retries_total", "mlflow")] >= 6
        assert len(_window_keys(dep.windows(len(expected), timeout=3))) < len(expected)

        proxy.restore()
        _check_against_oracle(dep.windows(len(expected), timeout=120), expected)
        deadline = time.monotonic() + 30
        while httpx.get(ready, timeout=5).status_code != 200 and time.monotonic() < deadline:
            time.sleep(1)
        assert httpx.get(ready, timeout=5).status_code == 200
        assert _sink_metrics(port)[("predlog_sink_up", "mlflow")] == 1.0
        assert proc.poll() is None
    finally:
        proxy.close()
        dep.stop()
