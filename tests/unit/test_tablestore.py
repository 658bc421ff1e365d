"""TableView: what reaches a changelog partition, and in what form (fake table and producer)."""

from __future__ import annotations

import asyncio
import json

from agents.tablestore import TableView


class FakeTopic:
    def get_topic_name(self) -> str:
        return "app-pending-changelog"


class FakeTable:
    def __init__(self) -> None:
        self.data: dict = {}
        self.changelog_topic = FakeTopic()


class FakeBatch:
    def __init__(self, capacity: int) -> None:
        self.records: list = []
        self.capacity = capacity

    def append(self, *, key, value, timestamp):
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class FakeProducer:
    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self.sent: list = []  # (topic, partition, [(key, value)])

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch, topic, *, partition):
        self.sent.append((topic, partition, list(batch.records)))


def _flush(view: TableView, producer: FakeProducer) -> int:
    return asyncio.run(view.flush_changelog(producer))


def test_last_value_per_key_as_json_to_the_view_partition():
    table, producer = FakeTable(), FakeProducer()
    view = TableView(table, 3)
    view["a"] = [1, 2.5, "x"]
    view["a"] = [2]
    view["b"] = {"k": None}
    assert table.data == {"3|a": [2], "3|b": {"k": None}}
    assert _flush(view, producer) == 2
    [(topic, partition, records)] = producer.sent
    assert (topic, partition) == ("app-pending-changelog", 3)
    assert [(json.loads(k), json.loads(v)) for k, v in records] == [
        ("3|a", [2]), ("3|b", {"k": None})]
    assert _flush(view, producer) == 0 and len(producer.sent) == 1  # nothing new


def test_a_key_created_and_deleted_between_flushes_is_never_sent():
    table, producer = FakeTable(), FakeProducer()
    view = TableView(table, 0)
    view["paired"] = [1]
    del view["paired"]
    view["kept"] = [2]
    _flush(view, producer)
    assert [json.loads(k) for k, _ in producer.sent[0][2]] == ["0|kept"]


def test_deleting_a_key_the_changelog_holds_sends_a_tombstone():
    table, producer = FakeTable(), FakeProducer()
    view = TableView(table, 1)
    view["x"] = [1]
    _flush(view, producer)
    del view["x"]
    view["y"] = [1]
    del view["y"]  # fresh: dropped
    _flush(view, producer)
    assert producer.sent[1][2] == [(b'"1|x"', None)]
    # Deleted, then created again before the flush: the new value, not a tombstone.
    view["z"] = [1]
    _flush(view, producer)
    del view["z"]
    view["z"] = [5]
    _flush(view, producer)
    assert producer.sent[-1][2] == [(b'"1|z"', b"[5]")]


def test_recovered_keys_are_not_fresh():
    table, producer = FakeTable(), FakeProducer()
    table.data["2|old"] = [1]  # as restored from the changelog
    view = TableView(table, 2)
    view["old"] = [9]
    del view["old"]
    _flush(view, producer)
    assert producer.sent[0][2] == [(b'"2|old"', None)]
    assert "old" not in view and list(view) == []


def test_full_batches_are_sent_and_a_new_one_started():
    table, producer = FakeTable(), FakeProducer(capacity=2)
    view = TableView(table, 0)
    for i in range(5):
        view[f"k{i}"] = [i]
    assert _flush(view, producer) == 5
    assert [len(records) for _, _, records in producer.sent] == [2, 2, 1]
