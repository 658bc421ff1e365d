"""A partition's slice of a Faust table, as a plain MutableMapping for `stream/` objects.

Faust picks a table changelog partition from "the current event", which is wrong
when a batch (`take_events`) mixes partitions. This view writes every change to the
changelog partition it was made for, and prefixes keys with that partition, so a
worker that is assigned the partition after a rebalance or a restart finds exactly
that partition's state in the recovered table.

Changes apply to the local table at once but reach the changelog only at
`flush_changelog()`, which the worker calls after the outputs those changes stand for
were delivered. A crash in between leaves the older state in the changelog: the
restarted worker produces the same outputs again (downstream keys make that
idempotent) instead of losing them.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any


class TableView(MutableMapping):
    def __init__(self, table: Any, partition: int) -> None:
        self.table = table
        self.partition = partition
        self.prefix = f"{partition}|"
        self._changes: dict[str, Any] = {}

    @property
    def _data(self) -> Any:
        return self.table.data

    def __getitem__(self, key: str) -> Any:
        return self._data[self.prefix + key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (self.prefix + key) in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(self.prefix + key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        full = self.prefix + key
        self._data[full] = value
        self._changes[full] = value

    def __delitem__(self, key: str) -> None:
        full = self.prefix + key
        del self._data[full]
        self._changes[full] = None

    def __iter__(self) -> Iterator[str]:
        n = len(self.prefix)
        return iter([k[n:] for k in list(self._data.keys()) if k.startswith(self.prefix)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    async def flush_changelog(self) -> int:
        """Send the changes since the last flush (the last value of each key) to the changelog.

        Sent straight to the Kafka producer, not through Faust's table buffer: that buffer's
        flush gives up after 0.1 s with records still queued, so Faust could commit input
        offsets whose state never reached the changelog (seen as lost pairs after SIGKILL).
        The producer flush before the next offset commit covers these sends.
        """
        changes, self._changes = self._changes, {}
        topic = self.table.changelog_topic
        for key, value in changes.items():
            if value is None:  # a tombstone
                await topic.send(key=key, value=None, partition=self.partition,
                                 key_serializer="json", value_serializer="raw")
            else:
                await topic.send(key=key, value=value, partition=self.partition,
                                 key_serializer="json", value_serializer="json")
        return len(changes)

    def clear_local(self) -> None:
        """Forget this partition's keys locally (revoked); the changelog keeps them."""
        for k in [k for k in list(self._data.keys()) if k.startswith(self.prefix)]:
            self._data.pop(k, None)
