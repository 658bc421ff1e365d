"""The bundled sample, replay's window summaries against an independent numpy oracle, the CLI."""

from __future__ import annotations

import calendar
import json
from collections import defaultdict
from datetime import datetime

import numpy as np
from typer.testing import CliRunner

from agents.cli import app
from agents.replay import SAMPLE, replay_files
from agents.settings import Settings
from tests.fixtures.seldon_sample import generate, render

WINDOW = 300.0


def test_committed_sample_is_what_the_generator_makes():
    assert SAMPLE.read_text() == render()


def _t(text: str) -> int:
    """ns since the epoch of "YYYY-MM-DDTHH:MM:SS[.frac]Z", by hand (not predlog's parser)."""
    head, _, frac = text.rstrip("Z").partition(".")
    whole = calendar.timegm(datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").timetuple())
    return whole * 10**9 + int(frac.ljust(9, "0")[:9])


def _oracle():
    """Window figures computed from the generator's raw lines, without predlog's code."""
    req, resp = {}, {}
    for line in generate():
        h = line["headers"]
        if "ce-inferenceservicename" not in h or h["ce-type"].endswith("feedback"):
            continue
        key = (h["ce-namespace"], h["ce-inferenceservicename"], h.get("ce-modelid") or
               h.get("ce-component"), h.get("ce-requestid") or h["ce-id"])
        body = json.loads(line["body"])
        if h["ce-type"].endswith("request"):
            req.setdefault(key, (_t(h["ce-time"]), body))
        else:
            resp.setdefault(key, (_t(h["ce-time"]), body))
    windows = defaultdict(lambda: {"requests": 0, "errors": defaultdict(int), "lat": [],
                                   "rows": 0})
    for key, (t, body) in req.items():
        w = windows[(key[0], key[1], key[2], t // int(WINDOW * 1e9) * int(WINDOW * 1e9))]
        w["requests"] += 1
        data = body.get("instances") or body["data"].get("ndarray") or [None]
        w["rows"] += len(data)
        if key not in resp:
            w["errors"]["no_response"] += 1
            continue
        rt, rbody = resp[key]
        w["lat"].append(rt - t)
        if "status" in rbody:
            w["errors"][rbody["status"]["reason"]] += 1
    return windows


def test_window_summaries_equal_an_independent_numpy_computation(tmp_path):
    result = replay_files([SAMPLE], Settings(window_seconds=WINDOW), tmp_path)
    got = [json.loads(x) for x in (tmp_path / "windows.jsonl").read_text().splitlines()]
    oracle = _oracle()
    assert len(got) == len(oracle) == result.windows
    for s in got:
        w = oracle[(s["namespace"], s["model"], s["node"], _t(s["window_start"]))]
        assert s["requests"] == w["requests"]
        assert s["rows"] == w["rows"]
        assert s["error_types"] == dict(w["errors"])
        assert s["errors"] == sum(w["errors"].values())
        assert s["unpaired_requests"] == w["errors"].get("no_response", 0)
        lat = np.array(w["lat"], dtype=np.int64)  # int ns, from the logged text
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            assert s["latency_seconds"][name] == np.percentile(lat, q) / 1e9
        assert s["latency_seconds"]["max"] == lat.max() / 1e9
        assert s["latency_seconds"]["mean"] == np.mean(lat) / 1e9
    assert dict(result.dead_letters) == {"invalid_json": 1, "unknown_event_type": 1}
    dead = [json.loads(x) for x in (tmp_path / "dead-letters.jsonl").read_text().splitlines()]
    assert [d["source"]["line"] for d in dead] == [26, 91]


def test_a_two_node_graph_counts_each_puid_once_at_the_deployment_level(tmp_path):
    result = replay_files([SAMPLE], Settings(window_seconds=WINDOW), tmp_path)
    totals = result.totals.get()
    assert totals[("seldon", "income-classifier")].requests == 40  # 2 nodes x 40 logged pairs
    docs = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    ids = [(d["_index"], d["_id"]) for d in docs]
    assert len(ids) == len(set(ids))  # the second node's documents do not overwrite the first


def test_replay_output_is_byte_identical_across_runs(tmp_path):
    for run in ("a", "b"):
        replay_files([SAMPLE], Settings(), tmp_path / run)
    for name in ("windows.jsonl", "predictions.jsonl", "dead-letters.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_cli_replay_prints_a_table_per_model(tmp_path):
    result = CliRunner().invoke(app, ["replay", "--out", str(tmp_path), "--window", "5m"])
    assert result.exit_code == 0, result.output
    assert "seldon/iris-classifier" in result.output
    assert "kserve/sklearn-iris" in result.output
    assert "dead letters: 2" in result.output
    assert (tmp_path / "windows.jsonl").stat().st_size > 0


def test_cli_replay_rejects_bad_input(tmp_path):
    result = CliRunner().invoke(app, ["replay", str(tmp_path / "nope.ndjson")])
    assert result.exit_code != 0 and "no such file" in result.output
    result = CliRunner().invoke(app, ["replay", "--window", "soon"])
    assert result.exit_code != 0 and "not a duration" in result.output
