"""Latency quantiles equal numpy on the logged timestamps, exactly (int ns end to end).

2026 timestamps with 6 and 9 fraction digits, latencies of tens of microseconds: float
epoch seconds near 1.8e9 s keep only ~2.4e-7 s, so a latency computed from them loses
digits. The oracle parses the logged text by hand (not predlog's parser) to int ns and
applies the definition `stream.summary.latency_summary` documents: pN =
`np.percentile(lat_ns, N) / 1e9`, mean = `np.mean(lat_ns) / 1e9`, max = `np.max(lat_ns) /
1e9`. The window summaries written by the replay must match with `==`, through the
compiled line decoder and through the Python decoders alike.
"""

from __future__ import annotations

import calendar
import json
import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from agents.replay import replay_files
from agents.settings import Settings
from stream.decode.lines import decode_line_python
from stream.events import SourceCoords

WINDOW = 300  # seconds
START = 1_793_491_200  # 2026-11-01T00:00:00Z
REQ = "io.seldon.serving.inference.request"
RESP = "io.seldon.serving.inference.response"


def _text(ns: int, digits: int) -> str:
    """RFC 3339 with `digits` fraction digits (the time must have no finer digits)."""
    whole, frac = divmod(ns, 10**9)
    assert frac % 10 ** (9 - digits) == 0
    head = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{head}.{frac // 10 ** (9 - digits):0{digits}d}Z"


def _parse(text: str) -> int:
    """The oracle's own reading of "YYYY-MM-DDTHH:MM:SS.fffZ": int ns, by hand."""
    head, frac = text.rstrip("Z").split(".")
    whole = calendar.timegm(datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").timetuple())
    return whole * 10**9 + int(frac.ljust(9, "0"))


def _line(kind: str, rid: str, time: str, body: dict) -> bytes:
    headers = {"ce-id": f"{rid}-{kind[-8:]}", "ce-requestid": rid, "ce-type": kind,
               "ce-modelid": "classifier", "ce-inferenceservicename": "fraud",
               "ce-namespace": "prod", "ce-endpoint": "default", "ce-time": time,
               "ce-source": "http://fraud-default.prod:8000/", "ce-specversion": "1.0",
               "content-type": "application/json"}
    return json.dumps({"headers": headers, "body": json.dumps(body, separators=(",", ":"))},
                      separators=(",", ":")).encode()


def _log(n: int = 900, seed: int = 13) -> list[bytes]:
    rng = random.Random(seed)
    timed = []
    for i in range(n):
        digits = 9 if i % 2 else 6  # microsecond loggers and nanosecond ones
        step = 10 ** (9 - digits)
        req = (START * 10**9 + i * 2_000_000_000 + rng.randrange(10**9)) // step * step
        lat = rng.randrange(10_000, 100_000) // step * step  # tens of microseconds
        rid = f"r{i}"
        timed.append((req, _line(REQ, rid, _text(req, digits), {"data": {"ndarray": [[i, 1.5]]}})))
        timed.append((req + lat, _line(RESP, rid, _text(req + lat, digits),
                                       {"data": {"ndarray": [[0.25, 0.75]]}})))
    timed.sort(key=lambda x: x[0])
    return [line for _, line in timed]


def _oracle(lines: list[bytes]) -> dict[str, dict[str, float]]:
    """window_start text → the latency figures numpy gives on the logged timestamps."""
    req: dict[str, int] = {}
    resp: dict[str, int] = {}
    for raw in lines:
        h = json.loads(raw)["headers"]
        (req if h["ce-type"] == REQ else resp)[h["ce-requestid"]] = _parse(h["ce-time"])
    by_window: dict[int, list[int]] = defaultdict(list)
    for rid, t in req.items():
        by_window[t // (WINDOW * 10**9)].append(resp[rid] - t)
    out = {}
    for w, lat in by_window.items():
        lat_ns = np.array(lat, dtype=np.int64)
        start = datetime.fromtimestamp(w * WINDOW, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out[start] = {"p50": np.percentile(lat_ns, 50) / 1e9,
                      "p95": np.percentile(lat_ns, 95) / 1e9,
                      "p99": np.percentile(lat_ns, 99) / 1e9,
                      "mean": np.mean(lat_ns) / 1e9, "max": np.max(lat_ns) / 1e9}
    return out


def _float_seconds(lines: list[bytes]) -> list[float]:
    """The latencies as float epoch seconds give them (what predlog computed before)."""
    req, resp = {}, {}
    for raw in lines:
        h = json.loads(raw)["headers"]
        (req if h["ce-type"] == REQ else resp)[h["ce-requestid"]] = _parse(h["ce-time"]) / 1e9
    return [resp[r] - t for r, t in req.items()]


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> tuple[Path, list[bytes]]:
    lines = _log()
    path = tmp_path_factory.mktemp("latency") / "log.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, lines


def test_the_scenario_is_one_float_seconds_get_wrong(log):
    """The oracle's point: float epoch seconds lose digits of these latencies."""
    _, lines = log
    exact = sorted(_oracle(lines).values(), key=lambda d: d["p50"])
    assert len(exact) >= 5
    lat_ns = {}
    for raw in lines:
        h = json.loads(raw)["headers"]
        lat_ns.setdefault(h["ce-requestid"], []).append(_parse(h["ce-time"]))
    exact_s = [(b - a) / 1e9 for a, b in lat_ns.values()]
    wrong = sum(x != y for x, y in zip(sorted(_float_seconds(lines)), sorted(exact_s),
                                       strict=True))
    assert wrong > len(exact_s) // 2


@pytest.mark.parametrize("decoder", ["native-or-python", "python"])
def test_window_latencies_equal_numpy_on_the_logged_timestamps(log, tmp_path, decoder):
    path, lines = log
    events = None
    if decoder == "python":  # the Python reference decoders, line by line
        events = [decode_line_python(raw, SourceCoords("file", path=str(path), line=i))
                  for i, raw in enumerate(lines, 1)]
    result = replay_files([path], Settings(window_seconds=float(WINDOW)), tmp_path,
                          events=events)
    got = [json.loads(x) for x in (tmp_path / "windows.jsonl").read_text().splitlines()]
    oracle = _oracle(lines)
    assert result.windows == len(got) == len(oracle)
    for s in got:
        assert s["latency_seconds"] == oracle[s["window_start"]], s["window_start"]
    docs = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    for d in docs:  # each prediction document: its own latency, exactly
        assert d["latency_seconds"] is not None
    by_rid = {}
    for raw in lines:
        h = json.loads(raw)["headers"]
        by_rid.setdefault(h["ce-requestid"], []).append(_parse(h["ce-time"]))
    assert {d["request_id"]: d["latency_seconds"] for d in docs} == {
        rid: (b - a) / 1e9 for rid, (a, b) in by_rid.items()}
