"""Real workers on the real stack: summaries against a numpy oracle, Prometheus,
Elasticsearch, a SIGKILL and restart, two workers in one group."""

from __future__ import annotations

import signal
import time
from datetime import datetime

import httpx
import pytest
from elasticsearch import Elasticsearch

from tests.fixtures.seldon_stream import flush_records, generate, oracle
from tests.integration.workers import PARTITIONS, Deployment

WINDOW = 300.0


def _t(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _check_against_oracle(summaries, expected):
    by_key = {}
    for s in summaries:
        key = (s["namespace"], s["model"], s["node"], _t(s["window_start"]))
        if key in by_key:  # a re-emission after a restart must be identical
            assert by_key[key] == s, f"window {key} emitted twice with different content"
        by_key[key] = s
    assert set(by_key) == set(expected)
    for key, exp in expected.items():
        got = by_key[key]
        for field in ("requests", "rows", "predictions", "errors", "error_types",
                      "unpaired_requests", "orphan_responses"):
            assert got[field] == exp[field], (key, field, got[field], exp[field])
        for name, value in exp["latency_seconds"].items():
            assert got["latency_seconds"][name] == value, (key, name)  # exact: int ns
        assert got["version"] == "1.0"


@pytest.fixture(scope="module")
def stream():
    return generate(n=2000, seconds=1200.0)


@pytest.fixture
def deployment(stack):
    dep = Deployment(stack, window=WINDOW, ttl=30.0, lateness=10.0)
    dep.create_topics()
    yield dep
    dep.stop()


def _es_count(stack, deployment, expected: int | None = None, timeout: float = 60) -> int:
    """Documents in the deployment's prediction indices, once the count stops changing."""
    es = Elasticsearch(stack.elasticsearch_url)
    pattern = f"it{deployment.suffix}-predictions-prod-*"
    last, deadline = -1, time.monotonic() + timeout
    while time.monotonic() < deadline:
        es.indices.refresh(index=pattern, ignore_unavailable=True, allow_no_indices=True)
        count = es.count(index=pattern, ignore_unavailable=True, allow_no_indices=True)["count"]
        if count == last and (expected is None or count >= expected):
            return count
        last = count
        time.sleep(2)
    return last


def _query(prom: str, expr: str) -> list:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert r["status"] == "success", r
    return r["data"]["result"]


def test_one_worker_matches_the_oracle_prometheus_and_elasticsearch(stack, stream, deployment):
    expected = oracle(stream, WINDOW)
    _, port = deployment.start_worker()
    deployment.produce(stream.records)
    deployment.produce(flush_records(stream.end_time + 3600, PARTITIONS), partitions=True)
    summaries = deployment.windows(len(expected))
    _check_against_oracle(summaries, expected)

    # Prometheus scraped the worker: the seed's counter and a sensible p95.
    rows_ok = sum(len(r.rows) for r in stream.requests if r.latency and not r.error
                  and r.model == "fraud")
    sel = f'model_name="fraud",it="{deployment.suffix}"'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        res = _query(stack.prometheus_url, f"sum(model_predictions_total{{{sel}}})")
        if res and float(res[0]["value"][1]) == rows_ok:
            break
        time.sleep(1)
    assert res and float(res[0]["value"][1]) == rows_ok
    [q] = _query(stack.prometheus_url, "histogram_quantile(0.95, sum by (le) "
                 f"(model_prediction_latency_seconds_bucket{{{sel}}}))")
    lat = sorted(r.latency for r in stream.requests if r.latency and r.model == "fraud")
    p95 = lat[int(0.95 * (len(lat) - 1))]
    assert 0.05 <= float(q["value"][1]) <= 0.5 and abs(float(q["value"][1]) - p95) < 0.25

    # Elasticsearch: exactly one document per request row.
    assert _es_count(stack, deployment) == sum(len(r.rows) for r in stream.requests)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "evidently_dataset_drift" in text or "model_window_requests" in text


def test_sigkill_and_restart_gives_the_same_summaries(stack, stream, deployment):
    expected = oracle(stream, WINDOW)
    proc, _ = deployment.start_worker()
    half = len(stream.records) // 2
    deployment.produce(stream.records[:half])
    time.sleep(8)  # let it process and commit part of it
    deployment.kill(proc)
    deployment.start_worker()
    deployment.produce(stream.records[half:])
    deployment.produce(flush_records(stream.end_time + 3600, PARTITIONS), partitions=True)
    _check_against_oracle(deployment.windows(len(expected)), expected)


def test_two_workers_share_the_partitions(stack, stream, deployment):
    expected = oracle(stream, WINDOW)
    deployment.start_worker()
    deployment.start_worker()
    time.sleep(5)  # let the group settle
    deployment.produce(stream.records)
    deployment.produce(flush_records(stream.end_time + 3600, PARTITIONS), partitions=True)
    _check_against_oracle(deployment.windows(len(expected), timeout=180), expected)


def test_a_worker_joining_mid_stream_loses_and_double_counts_nothing(stack, stream, deployment):
    """A rebalance while the first worker is busy: partitions (and their changelogged state)
    move to the newcomer; every window is still emitted once per content."""
    expected = oracle(stream, WINDOW)
    deployment.start_worker()
    half = len(stream.records) // 2
    deployment.produce(stream.records[:half])
    time.sleep(3)  # the first worker is mid-stream
    deployment.start_worker()
    deployment.produce(stream.records[half:])
    deployment.produce(flush_records(stream.end_time + 3600, PARTITIONS), partitions=True)
    _check_against_oracle(deployment.windows(len(expected), timeout=90), expected)


def test_records_read_again_behind_the_changelog_count_once(stack, stream, deployment):
    """Committed offsets lag the changelogged state (a rebalance or crash between a batch's
    state and its offset commit). Here the lag is made long: once everything was processed,
    the stopped group's offsets are set back to the middle of each partition. The restarted
    worker reads those records again against state that has long resolved them (its `done`
    markers expired), among them responses whose requests it does not read again: nothing
    may count twice — no phantom orphan, no pair in two windows."""
    expected = oracle(stream, WINDOW)
    proc, _ = deployment.start_worker()
    half = len(stream.records) // 2
    deployment.produce(stream.records[:half])
    deployment.caught_up("events")
    deployment.caught_up("pairs")
    deployment.kill(proc, signal.SIGTERM)  # leaves the group: its offsets can be set
    deployment.rewind("events")
    deployment.rewind("pairs")
    deployment.start_worker()
    deployment.produce(stream.records[half:])
    deployment.produce(flush_records(stream.end_time + 3600, PARTITIONS), partitions=True)
    _check_against_oracle(deployment.windows(len(expected)), expected)
