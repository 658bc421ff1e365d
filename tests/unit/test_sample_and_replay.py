"""The bundled sample, the replay's per-model counts and the CLI."""

from __future__ import annotations

import json
from collections import defaultdict

from typer.testing import CliRunner

from agents.cli import app
from agents.replay import SAMPLE, replay_files
from tests.fixtures.seldon_sample import generate, render


def test_committed_sample_is_what_the_generator_makes():
    assert SAMPLE.read_text() == render()


def _expected_counts():
    """Count the generated sample independently of the decoders: from raw headers."""
    reqs, resps, fb = defaultdict(set), defaultdict(set), defaultdict(int)
    rows = defaultdict(int)
    errors = defaultdict(set)
    for line in generate():
        h = line["headers"]
        if "ce-inferenceservicename" not in h:
            continue
        key = (h["ce-namespace"], h["ce-inferenceservicename"])
        rid = h.get("ce-requestid") or h["ce-id"]
        body = json.loads(line["body"])
        if h["ce-type"].endswith("request"):
            if rid not in reqs[key]:
                rows[key] += len(body.get("instances") or body["data"].get("ndarray")
                                 or [body["data"]["tensor"]["shape"][0]])
            reqs[key].add(rid)
        elif h["ce-type"].endswith("response"):
            if rid not in resps[key] and "status" in body:
                errors[key].add(rid)
            resps[key].add(rid)
        else:
            fb[key] += 1
    return reqs, resps, fb, rows, errors


def test_replay_counts_match_an_independent_count(tmp_path):
    result = replay_files([SAMPLE], tmp_path)
    reqs, resps, fb, rows, errors = _expected_counts()
    got = result.tally.get()
    assert set(got) == set(reqs)
    for key, c in got.items():
        assert c.requests == len(reqs[key])
        assert c.responses == len(resps[key])
        assert c.feedback == fb[key]
        assert c.rows == rows[key]
        assert c.errors == len(errors[key])
    assert dict(result.tally.dead_letters) == {"invalid_json": 1, "unknown_event_type": 1}
    dead = [json.loads(x) for x in (tmp_path / "dead-letters.jsonl").read_text().splitlines()]
    assert [d["source"]["line"] for d in dead] == [26, 91]


def test_cli_replay_prints_a_table_per_model():
    result = CliRunner().invoke(app, ["replay"])
    assert result.exit_code == 0, result.output
    assert "seldon/iris-classifier" in result.output
    assert "kserve/sklearn-iris" in result.output
    assert "dead letters: 2" in result.output


def test_cli_replay_rejects_a_missing_file(tmp_path):
    result = CliRunner().invoke(app, ["replay", str(tmp_path / "nope.ndjson")])
    assert result.exit_code != 0
    assert "no such file" in result.output
