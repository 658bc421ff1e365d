"""The label joiner on disk (agents/labelstate.py) against the same joiner in memory.

Both must give the same joined labels, unmatched labels, counters and waiting counts for
any sequence of predictions, labels and expiries, whatever the commit points; and a DB
reopened from disk, or rebuilt from nothing but its changelog records, must go on exactly
as the one that wrote them. (The changelog topic itself, with a real broker, is covered by
the worker's integration tests; here commits are applied as `send_changes` applies them
once the broker acked.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.labelstate import DiskJoinState
from stream.decode.labels import Label
from stream.events import ModelRef
from stream.eventtime import NS
from stream.labels import LabelJoiner, Prediction

pytest.importorskip("rocksdict")

MODELS = [ModelRef("iris", "ns", "clf", "p", "v1"), ModelRef("iris", "ns", "pre", "p", "v1")]


class Harness:
    """A DiskJoinState with commits as the worker makes them, and its changelog kept."""

    def __init__(self, path: Path, partition: int = 0) -> None:
        self.path, self.partition = path, partition
        self.changelog: list[tuple[bytes, bytes | None]] = []
        self.state = self._new()
        self.state.open_local()

    def _new(self) -> DiskJoinState:
        return DiskJoinState(self.path, "g-labelstate-changelog", self.partition, 8 << 20)

    def commit(self) -> None:
        changes = self.state.take_changes()
        if changes:
            records = DiskJoinState.records_of(changes)
            self.changelog += records
            self.state.written(changes, records, len(self.changelog) - 1)

    def reopen(self) -> DiskJoinState:
        self.state.close()
        self.state = self._new()
        self.state.open_local()
        return self.state

    def rebuild(self, other: Path) -> DiskJoinState:
        """A new disk: nothing but the changelog."""
        self.state.close()
        self.path = other
        self.state = self._new()
        self.state.open_local()
        self.state.apply(self.changelog, len(self.changelog) - 1)
        self.state.close()
        return self.reopen()


def outcome(joiner: LabelJoiner, op) -> object:
    kind, *args = op
    if kind == "pred":
        rid, row, model, t, out = args
        joined = joiner.update(Prediction(rid, row, MODELS[model], t * NS, f"w{t // 60}",
                                          [out, 1 - out], ("p0", "p1")))
    elif kind == "label":
        rid, row, value, t = args
        joined = joiner.update(Label(rid, row, value, None if t is None else t * NS, "file"))
    else:
        (wm,) = args
        return [(x.request_id, x.row, x.value) for x in joiner.expire(wm * NS if wm > -1e9
                                                                      else wm)]
    return [(j.prediction.request_id, j.prediction.row, j.prediction.model.node,
             j.label.value, j.delay_ns) for j in joined]


ops = st.lists(st.one_of(
    st.tuples(st.just("pred"), st.sampled_from(["a", "b", "c|d", "é"]), st.integers(0, 2),
              st.integers(0, 1), st.integers(0, 500), st.floats(0, 1)),
    st.tuples(st.just("label"), st.sampled_from(["a", "b", "c|d", "é", "z"]),
              st.integers(0, 2), st.integers(0, 1), st.none() | st.integers(0, 500)),
    st.tuples(st.just("expire"), st.integers(-10, 1200) | st.just(float("-inf"))),
    st.just(("commit",)), st.just(("reopen",)),
), max_size=60)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops)
def test_disk_joiner_equals_the_memory_joiner(tmp_path_factory, ops):
    base = tmp_path_factory.mktemp("ls")
    memory = LabelJoiner(horizon_seconds=300)
    h = Harness(base / "p0")
    disk = LabelJoiner(horizon_seconds=300, state=h.state)
    for op in ops:
        if op[0] == "commit":
            h.commit()
            continue
        if op[0] == "reopen":  # a restart: only what was committed survives, in both
            h.commit()
            disk = LabelJoiner(horizon_seconds=300, state=h.reopen())
            memory_restart(memory, disk)
            continue
        assert outcome(disk, op) == outcome(memory, op), op
        assert h.state.counts() == memory._state.counts()
    h.commit()
    rebuilt = LabelJoiner(horizon_seconds=300, state=h.rebuild(base / "p0-new"))
    memory_restart(memory, rebuilt)
    assert h.state.counts() == memory._state.counts()
    for wm in (10_000, 20_000):  # the second passes labels the first anchored
        assert outcome(rebuilt, ("expire", wm)) == outcome(memory, ("expire", wm))
    assert h.state.counts() == memory._state.counts() == (0, 0)
    h.state.close()


def memory_restart(memory: LabelJoiner, disk: LabelJoiner) -> None:
    """What a restart forgets in both: the largest watermark seen (in memory only)."""
    memory._watermark = float("-inf")
    disk._watermark = float("-inf")


def test_uncommitted_changes_are_gone_after_a_restart_and_committed_ones_stay(tmp_path):
    h = Harness(tmp_path / "p0")
    j = LabelJoiner(3600, state=h.state)
    j.update(Prediction("r1", 0, MODELS[0], 10 * NS, "w0", [0.2, 0.8]))
    h.commit()
    j.update(Prediction("r2", 0, MODELS[0], 11 * NS, "w0", [0.9, 0.1]))  # never committed
    j = LabelJoiner(3600, state=h.reopen())
    assert h.state.counts() == (1, 0)
    assert [x.prediction.request_id for x in j.update(Label("r1", 0, 1, 20 * NS, "t"))] == ["r1"]
    assert j.update(Label("r2", 0, 1, 20 * NS, "t")) == []  # waits: its prediction is gone
    h.state.close()


def test_reads_see_changes_taken_but_not_yet_acknowledged(tmp_path):
    """Between a commit point and the broker's ack the next batch runs: it must see the
    taken changes (a label for a prediction of the batch before)."""
    h = Harness(tmp_path / "p0")
    j = LabelJoiner(3600, state=h.state)
    j.update(Prediction("r1", 0, MODELS[0], 10 * NS, "w0", [0.2, 0.8]))
    taken = h.state.take_changes()
    (joined,) = j.update(Label("r1", 0, 1, 20 * NS, "t"))
    assert joined.prediction.output == [0.2, 0.8]
    assert j.update(Prediction("r1", 0, MODELS[0], 10 * NS, "w0", [0.2, 0.8])) == []
    h.state.written(taken, DiskJoinState.records_of(taken), 0)
    h.commit()
    assert h.state.counts() == (1, 1)
    h.state.close()


def test_a_label_without_time_waits_for_a_watermark_before_any_event(tmp_path):
    """A worker's first tick expires at -inf (no event read yet): a label without a time
    recovered from the changelog must stay waiting, not be anchored at -inf (on disk
    that raised OverflowError in the tick; in memory it expired the label at once)."""
    for state in (None, Harness(tmp_path / "p0").state):
        j = LabelJoiner(3600, state=state)
        j.update(Label("r1", 0, 1, None, "file"))
        assert j.expire(float("-inf")) == []
        assert j.expire(10 * NS) == []  # anchored at 10 s now
        (joined,) = j.update(Prediction("r1", 0, MODELS[0], 9 * NS, "w0", [1]))
        assert joined.label.value == 1
        assert [x.request_id for x in j.expire(10 * NS + 3601 * NS)] == []  # joined
        if state is not None:
            state.close()


def test_a_db_of_another_changelog_is_not_trusted(tmp_path):
    h = Harness(tmp_path / "p0")
    j = LabelJoiner(3600, state=h.state)
    j.update(Prediction("r1", 0, MODELS[0], 10 * NS, "w0", [1]))
    h.commit()
    assert h.state.local_offset() == len(h.changelog) - 1
    h.state.close()
    other = DiskJoinState(tmp_path / "p0", "other-labelstate-changelog", 0, 8 << 20)
    other.open_local()
    assert other.local_offset() == -1
    other.close()


def test_memory_stays_bounded_by_the_setting_not_by_the_predictions_waiting(tmp_path):
    """200,000 predictions waiting: the process holds none of them (RocksDB's cache and
    write buffers are bounded by `memory_bytes`); the counts come from the DB."""
    import gc
    import tracemalloc

    h = Harness(tmp_path / "p0")
    j = LabelJoiner(30 * 86400, state=h.state)
    m = MODELS[0]
    tracemalloc.start()
    for i in range(200_000):
        j.update(Prediction(f"req-{i:08d}", 0, m, i * NS, "w0", [0.5, 0.5], ("p0", "p1")))
        if i % 2000 == 1999:
            h.commit()
            h.changelog.clear()  # the broker keeps the changelog, not this process
    h.commit()
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert h.state.counts() == (200_000, 0)
    assert held < 8 << 20, held  # Python objects held: not ~200 bytes × 200,000
    (joined,) = j.update(Label("req-00123456", 0, 1, None, "file"))
    assert joined.prediction.time == 123_456 * NS
    h.state.close()
