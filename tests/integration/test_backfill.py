"""Prometheus backfill: replay's metrics.prom → promtool blocks → a real Prometheus answers
range queries over the replayed period with the replayed values."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime

import httpx
import pytest

from agents.replay import SAMPLE, replay_files
from agents.settings import Settings
from tests.integration.workers import free_port, wait_ready


def test_metrics_prom_backfills_a_real_prometheus(tmp_path):
    for tool in ("promtool", "prometheus"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: run `predlog stack up prometheus` (installs it)")
    out = tmp_path / "replay"
    replay_files([SAMPLE], Settings(window_seconds=300), out)
    blocks = tmp_path / "data"
    done = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics",
                           str(out / "metrics.prom"), str(blocks)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1m}\n")
    proc = subprocess.Popen(["prometheus", f"--config.file={config}",
                             f"--storage.tsdb.path={blocks}",
                             "--storage.tsdb.retention.time=100y",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/-/ready", proc, 30, "prometheus on the backfilled blocks")
        summaries = [json.loads(x) for x in (out / "windows.jsonl").read_text().splitlines()]
        iris = [s for s in summaries if s["model"] == "iris-classifier" and not s["revision"]]
        ends = [datetime.fromisoformat(s["window_end"].replace("Z", "+00:00")).timestamp()
                for s in iris]
        r = httpx.get(f"{url}/api/v1/query_range", timeout=10, params={
            "query": 'model_window_requests{model_name="iris-classifier"}',
            "start": min(ends), "end": max(ends), "step": 300}).json()
        assert r["status"] == "success", r
        [series] = r["data"]["result"]
        got = {float(t): float(v) for t, v in series["values"]}
        assert got == {end: float(s["requests"]) for end, s in zip(ends, iris, strict=True)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
