"""The typed window summary reads and writes exactly what predlog emitted before it.

tests/fixtures/windows-main.jsonl holds windows.jsonl lines written by main before the
summary became a `WindowSummary` (the demo's first emission of a window with early
warnings, a revision, and a window without reference or answered requests).
"""

from pathlib import Path

import msgspec
import orjson
import pytest

from stream.monitoring import Monitoring
from stream.pipeline import Pipeline
from stream.window_summary import WindowSummary
from stream.windows import WindowKey

LINES = (Path(__file__).parents[1] / "fixtures" / "windows-main.jsonl").read_bytes().splitlines()


@pytest.mark.parametrize("line", LINES, ids=["early_warnings", "revision", "no_reference"])
def test_what_main_wrote_decodes_and_encodes_to_the_same_bytes(line):
    for summary in (WindowSummary.from_json(line), WindowSummary.from_builtins(orjson.loads(line))):
        assert orjson.dumps(summary.to_builtins(), option=orjson.OPT_SORT_KEYS) == line


def test_an_older_summary_without_the_later_fields_still_decodes():
    old = orjson.loads(LINES[2])
    for later in ("node", "orphan_responses", "input_size", "feature_stats", "revision"):
        del old[later]
    s = WindowSummary.from_builtins(old)
    assert (s.node, s.orphan_responses, s.input_size, s.feature_stats, s.revision) == (
        "", 0, {}, {}, 0)
    with pytest.raises(msgspec.ValidationError):  # the window's identity is required
        WindowSummary.from_builtins({k: v for k, v in old.items() if k != "model"})


def test_a_summary_restored_from_its_table_form_is_revised_like_the_original():
    """The worker keeps `to_builtins()` in its summaries table (JSON in the changelog) and
    restores emitted windows with `from_builtins` after a restart."""
    from stream.decode.labels import Label
    from stream.events import EventKind, ModelRef, PredictionEvent
    from stream.eventtime import seconds_to_ns as ns

    m = ModelRef("iris", "ns", "clf", version="v1")

    def run(restart: bool) -> list[bytes]:
        mon = Monitoring(label_horizon=3600)
        p = Pipeline(window_seconds=60, lateness=0, pairing_ttl=5, monitoring=mon)
        for i in range(4):
            p.process(PredictionEvent(EventKind.REQUEST, f"r{i}", m, ns(1.0 + i), rows=[[1.0]]))
            p.process(PredictionEvent(EventKind.RESPONSE, f"r{i}", m, ns(1.5 + i), outputs=[[0]]))
        p.process(PredictionEvent(EventKind.REQUEST, "late", m, ns(200), rows=[[1.0]]))
        [(key, first)] = p.advance().summaries
        if restart:  # what a new worker reads back from the table's changelog
            stored = orjson.loads(orjson.dumps(first.to_builtins()))
            mon._emitted.clear()
            mon.restore_emitted(WindowKey.parse(key.id, ns(60)),
                                WindowSummary.from_builtins(stored))
        for i in range(4):
            p.process_label(Label(f"r{i}", 0, 0, ns(100.0 + i), "file"))
        out = [first] + [s for _, s in mon.revisions(final=True)]
        return [orjson.dumps(s.to_builtins(), option=orjson.OPT_SORT_KEYS) for s in out]

    whole, restarted = run(False), run(True)
    assert len(whole) == 2 and b'"revision":1' in whole[1]
    assert restarted == whole



def _joined(i: int, label: str = "b"):
    """A joined label of row 0 of request r<i> in `_KEY`'s window (outputs: 0.7 for "b")."""
    from stream.decode.labels import Label
    from stream.events import ModelRef
    from stream.eventtime import seconds_to_ns as ns
    from stream.labels import JoinedLabel, Prediction

    m = ModelRef("iris", "ns", "clf", version="v1")
    return JoinedLabel(Prediction(f"r{i}", 0, m, ns(i), _KEY.id, [0.3, 0.7], ("a", "b")),
                       Label(f"r{i}", 0, label, ns(100 + i), "topic"))


_KEY = WindowKey("ns", "iris", "v1", "clf", 0, 60 * 10**9)


def _emitted(predictions: int, labels: int) -> WindowSummary:
    """`_KEY`'s window as emitted with `labels` labels."""
    return WindowSummary(model="iris", version="v1", namespace="ns", node="clf",
                         window_start="1970-01-01T00:00:00Z", window_end="1970-01-01T00:01:00Z",
                         requests=predictions, rows=predictions, predictions=predictions,
                         errors=0, performance={"labels": labels})


def test_a_partition_restored_again_counts_its_labels_once():
    """A worker restores a window partition's joined labels from the changelog each time the
    partition is assigned to it; what it kept from an earlier assignment is forgotten
    first (the chaos harness saw a revision with every label counted twice)."""
    mon = Monitoring(label_horizon=3600)
    for _ in range(3):  # assigned, revoked, assigned again, ...
        mon.forget([_KEY.id])
        for i in range(6):
            mon.add_joined(_joined(i, "b" if i % 3 else "a"))
        mon.restore_emitted(_KEY, _emitted(6, 6))
    mon.add_joined(_joined(6, "a"))  # a new label: due
    [(_, revised)] = mon.revisions(final=True)
    assert revised.performance["labels"] == 7
    assert revised.performance["confusion_matrix"]["matrix"] == [[0, 3], [0, 4]]


def test_a_window_leaving_the_label_horizon_reports_its_last_labels():
    """Fewer new labels than a revision waits for (10 %) are still reported once the
    window passes the label horizon, just before it is forgotten: a worker's last revision
    is then the one replay emits at the end of its input."""
    mon = Monitoring(label_horizon=3600)
    for i in range(20):
        mon.add_joined(_joined(i))
    mon.restore_emitted(_KEY, _emitted(30, 20))
    mon.add_joined(_joined(20))  # 5 % more: not yet worth a revision
    horizon = 3600 * 10**9
    assert mon.revisions(watermark=_KEY.end + horizon) == []
    [(_, last)] = mon.revisions(watermark=_KEY.end + horizon + 1)
    assert (last.revision, last.performance["labels"]) == (1, 21)
    mon.expire(_KEY.end + horizon + 1)
    assert mon.revisions(final=True) == []


def test_labels_joined_after_the_emission_stay_due_across_a_restart():
    """A window emitted with 0 labels that then joined some, not yet revised, is restored
    (labels, then the summary) still due: its next revision reports them (before, the
    restored window waited for a new label, and a last revision never came)."""
    mon = Monitoring(label_horizon=3600)
    for i in range(2):
        mon.add_joined(_joined(i))
    mon.restore_emitted(_KEY, _emitted(3, 0))
    [(_, revised)] = mon.revisions(final=True)
    assert (revised.revision, revised.performance["labels"]) == (1, 2)
    mon.restore_emitted(_KEY, revised)  # restored again after that revision: nothing new
    assert mon.revisions(final=True) == []
