"""A partition's slice of a Faust table, as a plain MutableMapping for `stream/` objects.

Faust picks a table changelog partition from "the current event", which is wrong
when a batch mixes partitions. This view writes every change to the
changelog partition it was made for, and prefixes keys with that partition, so a
worker that is assigned the partition after a rebalance or a restart finds exactly
that partition's state in the recovered table.

Changes apply to the local table at once but reach the changelog only at
`flush_changelog()`, which the worker calls after the outputs those changes stand for
were delivered. A crash in between leaves the older state in the changelog: the
restarted worker produces the same outputs again (downstream keys make that
idempotent) instead of losing them. Between two flushes only the last value of a key
is sent, and a key created and deleted in between is not sent at all (a request paired
within one batch never reaches the changelog).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from agents.faust_adapter import memory_store_dict
from stream.state import encode


class TableView(MutableMapping):
    def __init__(self, table: Any, partition: int) -> None:
        self.table = table
        self.partition = partition
        self.prefix = f"{partition}|"
        self._changes: dict[str, Any] = {}
        self._fresh: set[str] = set()  # created since the last flush: not in the changelog
        # The plain dict under Faust's in-memory store: every stage touches a table several
        # times per record (`agents.faust_adapter.memory_store_dict`).
        self._data: Any = memory_store_dict(table)

    def __getitem__(self, key: str) -> Any:
        return self._data[self.prefix + key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (self.prefix + key) in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(self.prefix + key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        full = self.prefix + key
        data = self._data
        if full not in data and full not in self._changes:
            self._fresh.add(full)
        data[full] = value
        self._changes[full] = value

    def replace_local(self, key: str, value: Any) -> None:
        """Set a key's value locally, not as a change: the same state in another form
        (`stream.state.upgrade` reading a recovered table's JSON lists as records)."""
        self._data[self.prefix + key] = value

    def __delitem__(self, key: str) -> None:
        full = self.prefix + key
        del self._data[full]
        if full in self._fresh:  # never reached the changelog: nothing to delete there
            self._fresh.discard(full)
            del self._changes[full]
        else:
            self._changes[full] = None

    def __iter__(self) -> Iterator[str]:
        n = len(self.prefix)
        return iter([k[n:] for k in list(self._data.keys()) if k.startswith(self.prefix)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def pending_changes(self) -> int:
        return len(self._changes)

    async def flush_changelog(self, producer: Any) -> int:
        """Send the changes since the last flush to the changelog (`take_changes` + `send`)."""
        return await self.send_changes(producer, self.take_changes())

    def take_changes(self) -> dict[str, Any]:
        """The changes since the last take, to send later with `send_changes`; starts afresh.

        Taking is what a commit point does at once, at the end of a batch; sending may
        wait until that batch's outputs were delivered, while the next batch already
        changes the table.
        """
        changes, self._changes = self._changes, {}
        self._fresh = set()
        return changes

    async def send_changes(self, producer: Any, changes: dict[str, Any]) -> int:
        """Send taken changes to this partition's changelog, in record batches.

        `producer` is the aiokafka producer under Faust's
        (`agents.faust_adapter.aiokafka_producer`).
        Records go straight to it as record batches, not through Faust's table buffer:
        that buffer's flush gives up after 0.1 s with records still queued, so Faust could
        commit input offsets whose state never reached the changelog (seen as lost pairs
        after SIGKILL); and one Faust `send` per record cost ~25 µs, most of a worker's
        time. Keys and values are JSON (`stream.state.encode`: state records as tagged
        arrays), as the table's json schema reads them back on recovery (as lists, which
        the stages read with `stream.state.upgrade`); a tombstone is a null value. The
        producer flush before the next offset commit covers these batches.
        """
        if not changes:
            return 0
        topic = self.table.changelog_topic.get_topic_name()
        dumps = encode
        batch = producer.create_batch()
        for key, value in changes.items():
            k, v = dumps(key), (None if value is None else dumps(value))
            if batch.append(key=k, value=v, timestamp=None) is None:
                await producer.send_batch(batch, topic, partition=self.partition)
                batch = producer.create_batch()
                if batch.append(key=k, value=v, timestamp=None) is None:  # larger than a batch
                    await producer.send(topic, value=v, key=k, partition=self.partition)
        if batch.record_count():
            await producer.send_batch(batch, topic, partition=self.partition)
        return len(changes)

    def clear_local(self) -> None:
        """Forget this partition's keys locally (revoked); the changelog keeps them."""
        for k in [k for k in list(self._data.keys()) if k.startswith(self.prefix)]:
            self._data.pop(k, None)
