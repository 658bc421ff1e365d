"""Replay reports what it cannot use: a feedback truth row that is not a label becomes a
dead letter (as in a worker), and labels whose prediction never came are counted by
source, listed in `unmatched-labels.jsonl` and printed."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from agents.cli import app
from agents.replay import SAMPLE, replay_files
from agents.settings import Settings
from stream.decode.lines import decode_line
from stream.events import DeadLetter, EventKind
from stream.pipeline import Pipeline


def _feedback_line(truth) -> bytes:
    """The sample's first feedback event with another truth."""
    with SAMPLE.open("rb") as fh:
        line = next(line for line in fh if b"io.seldon.serving.feedback" in line)
    event = json.loads(line)
    body = json.loads(event["body"])
    body["truth"] = {"data": {"ndarray": truth}}
    event["body"] = json.dumps(body)
    return json.dumps(event).encode()


def test_the_pipeline_returns_a_bad_feedback_row_as_a_dead_letter():
    event = decode_line(_feedback_line([[0], [1, 2]]))
    assert event.kind is EventKind.FEEDBACK and event.truth == [0, [1, 2]]
    result = Pipeline(60, 0, 5).process(event)
    [dl] = result.dead_letters
    assert isinstance(dl, DeadLetter) and dl.reason == "bad_label"
    assert dl.detail.startswith("truth row 1:") and dl.raw == event.raw


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    events = tmp_path / "events.ndjson"
    events.write_bytes(SAMPLE.read_bytes() + _feedback_line([[0], [1, 2]]) + b"\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,row,label,timestamp\n"
                      "no-such-request,0,1,2026-11-01T00:03:00Z\n"
                      "no-such-request-either,0,0,\n")
    return events, labels


def test_replay_dead_letters_bad_feedback_rows_and_reports_unmatched_labels(tmp_path):
    from agents.replay import ReplayOptions

    events, labels = _inputs(tmp_path)
    out = tmp_path / "out"
    result = replay_files([events], Settings(), out, ReplayOptions(labels=[labels],
                                                                  mlflow=False))
    assert result.dead_letters["bad_label"] == 1
    dead = [orjson.loads(x) for x in (out / "dead-letters.jsonl").read_bytes().splitlines()]
    [bad] = [d for d in dead if d["reason"] == "bad_label"]
    assert bad["detail"].startswith("truth row 1:") and "truth" in bad["raw"]
    # Both file labels never met a prediction (a timed one and one without time).
    assert result.unmatched_labels["file"] == 2
    unmatched = [orjson.loads(x)
                 for x in (out / "unmatched-labels.jsonl").read_bytes().splitlines()]
    assert sorted(u["request_id"] for u in unmatched if u["source"] == "file") == [
        "no-such-request", "no-such-request-either"]
    assert sum(result.unmatched_labels.values()) == len(unmatched)


def test_cli_replay_prints_unmatched_labels(tmp_path):
    events, labels = _inputs(tmp_path)
    res = CliRunner().invoke(app, ["replay", str(events), "--labels", str(labels),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "labels unmatched" in res.output and "file: 2" in res.output
    assert "bad_label: 1" in res.output


def test_replay_dead_letters_a_window_mlflow_refuses(tmp_path, monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    from agents.replay import ReplayOptions
    from sinks.mlflow_sink import MlflowSink

    write, calls = MlflowSink._write, []

    def refuse_the_first(self, summary, report, reference=None):
        calls.append(summary)
        if len(calls) == 1:
            raise MlflowException("refused", error_code=INVALID_PARAMETER_VALUE)
        return write(self, summary, report, reference)

    monkeypatch.setattr(MlflowSink, "_write", refuse_the_first)
    out = tmp_path / "out"
    result = replay_files([SAMPLE], Settings(), out, ReplayOptions(mlflow=True))
    assert result.dead_letters["mlflow_rejected"] == 1
    assert result.mlflow_runs == len(calls) - 1
    dead = [orjson.loads(x) for x in (out / "dead-letters.jsonl").read_bytes().splitlines()]
    [refused] = [d for d in dead if d["reason"] == "mlflow_rejected"]
    assert refused["detail"] == "MlflowException: refused"
    assert orjson.loads(refused["raw"]) == orjson.loads(orjson.dumps(calls[0].to_builtins()))
