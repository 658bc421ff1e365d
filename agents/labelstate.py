"""A worker's label-join state on disk: `DiskJoinState`, one RocksDB per events partition.

Predictions wait here for labels (and labels for predictions) for as long as the label
horizon, days or weeks: in memory that grew with horizon × traffic. On disk, memory is
RocksDB's block cache and write buffers (`PREDLOG_LABEL_STATE_MEMORY_MB`) plus the
changes of the batches not yet committed. Everything the joiner looks up is a point
read or an ordered scan of the DB (`stream.labels.JoinState`):

    s|<store key>             a PredictionState or LabelState (JSON, `stream.state`)
    k|<row>|<request id>      the store keys of that row's predictions (JSON list)
    e|<deadline>|<store key>  a deadline, 21 digits (ns + 2**63): scanned in order
    u|<store key>             a label without a time, anchored at the next expiry
    m|counts                  [predictions, labels] waiting
    m|offset, m|topic         (local only) the changelog offset the DB holds, and its topic

The changelog discipline is `agents.tablestore.TableView`'s: a batch's changes are
buffered (reads see them), taken at the commit point, and written — to the changelog
topic `<group>-labelstate-changelog` (compacted; key: the DB key, value: its bytes or a
tombstone) and then, in one atomic RocksDB write with the changelog offset, to the DB —
only after that batch's outputs were delivered. A crash loses at most changes whose
outputs were never delivered, which the replayed input makes again. On (re)assignment
`open` reads the changelog from the offset the DB holds to the end, so a restart on the
same disk replays only the tail, and a worker on a new disk rebuilds the DB from the
changelog.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from stream.labels import Key
from stream.state import LabelState, PredictionState, encode

log = logging.getLogger("predlog.labelstate")

_OFFSET = 2**63  # deadlines are int ns; + 2**63 keeps every one non-negative
_STATES = msgspec.json.Decoder(PredictionState | LabelState)
_KEYS = msgspec.json.Decoder(list[str])
_COUNTS = msgspec.json.Decoder(tuple[int, int])
_DELETED = object()


def deadline_key(deadline: int, skey: str) -> bytes:
    """The `e|` key of a deadline: its digits sort as the numbers do.

    >>> deadline_key(-5, "p|x") < deadline_key(3, "l|y") < deadline_key(10**18, "a")
    True
    """
    return f"e|{deadline + _OFFSET:021d}|{skey}".encode()


def _bound(watermark: float) -> bytes:
    """The first `e|` key not due at `watermark` (due: deadline < watermark)."""
    if watermark == math.inf:
        return b"e}"  # past every e| key
    if watermark == -math.inf:
        return b"e|"
    return f"e|{math.ceil(watermark) + _OFFSET:021d}".encode()


class DiskJoinState:
    """`stream.labels.JoinState` in RocksDB (see the module)."""

    def __init__(self, path: Path, topic: str, partition: int, memory_bytes: int,
                 producer: Any = None) -> None:
        """`producer`: an aiokafka producer of its own for the changelog (else the one
        `send_changes` is given). Faust's producer keeps metadata for Faust's topics only:
        batches for another topic made its sender refresh metadata in a loop."""
        self.path, self.topic, self.partition = Path(path), topic, partition
        self.memory_bytes = memory_bytes
        self.producer = producer
        self.db: Any = None
        self._buf: dict[bytes, Any] = {}  # this batch's changes (None: deleted)
        self._inflight: list[dict[bytes, Any]] = []  # taken, not yet in the DB
        self._preds = self._labels = 0

    # -- the DB --------------------------------------------------------------------------------
    def _open_db(self) -> None:
        from rocksdict import BlockBasedOptions, Cache, Options, Rdict

        self.path.mkdir(parents=True, exist_ok=True)
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        table = BlockBasedOptions()
        # Half the budget caches blocks, the rest is two write buffers: RocksDB's memory,
        # whatever the number of predictions waiting.
        table.set_block_cache(Cache(max(1 << 20, self.memory_bytes // 2)))
        table.set_bloom_filter(10, False)  # most look-ups miss (a label not there yet)
        opts.set_block_based_table_factory(table)
        opts.set_write_buffer_size(max(1 << 20, self.memory_bytes // 4))
        opts.set_max_write_buffer_number(2)
        self.db = Rdict(str(self.path), opts)

    def local_offset(self) -> int:
        """The last changelog offset the DB holds (-1: none; a DB of another changelog
        topic counts as none)."""
        if self.db.get(b"m|topic") != self.topic.encode():
            return -1
        raw = self.db.get(b"m|offset")
        return int(raw) if raw is not None else -1

    def wipe(self) -> None:
        """Start the DB afresh (it belongs to another changelog, or is ahead of it)."""
        if self.db is not None:
            self.db.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._open_db()

    def apply(self, records: list[tuple[bytes, bytes | None]], offset: int) -> None:
        """Changelog records (key, value or None) into the DB, with the offset they end at."""
        from rocksdict import WriteBatch

        wb = WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:
                wb.delete(key)
            else:
                wb.put(key, value)
        wb.put(b"m|offset", str(offset).encode())
        wb.put(b"m|topic", self.topic.encode())
        self.db.write(wb)

    async def open(self, consumer_factory: Any) -> int:
        """Open the DB and read the changelog tail into it; returns the records read.

        `consumer_factory()` gives an unstarted aiokafka consumer (no group)."""
        from aiokafka import TopicPartition

        self._open_db()
        tp = TopicPartition(self.topic, self.partition)
        consumer = consumer_factory()
        await consumer.start()
        read = 0
        try:
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            begin = (await consumer.beginning_offsets([tp]))[tp]
            local = self.local_offset()
            if local >= end or local + 1 < begin:
                if local >= 0:
                    log.warning("label state of partition %s is at changelog offset %s, "
                                "outside %s..%s: rebuilding it", self.partition, local, begin,
                                end)
                self.wipe()
                local = -1
            if local + 1 < end:
                consumer.seek(tp, max(local + 1, begin))
                while (await consumer.position(tp)) < end:
                    got = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
                    records = got.get(tp, [])
                    if records:
                        self.apply([(r.key, r.value) for r in records], records[-1].offset)
                        read += len(records)
        finally:
            await consumer.stop()
        self._load_counts()
        return read

    def open_local(self) -> None:
        """Open the DB as it is on disk, without reading the changelog (tests, tools)."""
        self._open_db()
        self._load_counts()

    def _load_counts(self) -> None:
        raw = self.db.get(b"m|counts")
        self._preds, self._labels = _COUNTS.decode(raw) if raw is not None else (0, 0)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        self._buf, self._inflight = {}, []

    # -- reads through the layers --------------------------------------------------------------
    def _read(self, key: bytes) -> Any:
        """(found, value): this batch's changes, then the taken ones (newest first), then
        the DB (its bytes)."""
        value = self._buf.get(key, _DELETED)
        if value is not _DELETED:
            return value
        for layer in reversed(self._inflight):
            value = layer.get(key, _DELETED)
            if value is not _DELETED:
                return value
        return self.db.get(key)  # bytes, or None

    def get(self, skey: str) -> Any:
        value = self._read(b"s|" + skey.encode())
        return _STATES.decode(value) if type(value) is bytes else value

    def put(self, skey: str, state: Any) -> None:
        self._buf[b"s|" + skey.encode()] = state
        if skey[0] == "p":
            self._preds += 1
        else:
            self._labels += 1

    def replace(self, skey: str, state: Any) -> None:
        self._buf[b"s|" + skey.encode()] = state

    def delete(self, skey: str) -> None:
        self._buf[b"s|" + skey.encode()] = None
        if skey[0] == "p":
            self._preds -= 1
        else:
            self._labels -= 1

    def _index_key(self, key: Key) -> bytes:
        return f"k|{key[1]}|{key[0]}".encode()

    def keys_of(self, key: Key) -> list[str]:
        value = self._read(self._index_key(key))
        if value is None:
            return []
        return _KEYS.decode(value) if type(value) is bytes else value

    def link(self, key: Key, skey: str) -> None:
        have = self.keys_of(key)
        if skey not in have:
            self._buf[self._index_key(key)] = sorted([*have, skey])

    def unlink(self, key: Key, skey: str) -> None:
        have = self.keys_of(key)
        if skey in have:
            rest = [k for k in have if k != skey]
            self._buf[self._index_key(key)] = rest or None

    def schedule(self, deadline: float, skey: str) -> None:
        if deadline != math.inf:  # an infinite horizon: never due
            self._buf[deadline_key(int(deadline), skey)] = b""

    def _scan(self, prefix: bytes, bound: bytes) -> list[bytes]:
        """The keys in [prefix, bound) of the DB and the buffered layers, in order."""
        present: dict[bytes, bool] = {}
        it = self.db.iter()
        it.seek(prefix)
        while it.valid():
            key = it.key()
            if key >= bound:
                break
            present[key] = True
            it.next()
        for layer in (*self._inflight, self._buf):
            for key, value in layer.items():
                if prefix <= key < bound:
                    present[key] = value is not None
        return sorted(k for k, there in present.items() if there)

    def due(self, watermark: float) -> Iterator[tuple[int, str]]:
        for key in self._scan(b"e|", _bound(watermark)):
            self._buf[key] = None
            _, digits, skey = key.decode().split("|", 2)
            yield int(digits) - _OFFSET, skey

    def add_unanchored(self, skey: str) -> None:
        self._buf[b"u|" + skey.encode()] = b""

    def take_unanchored(self) -> list[str]:
        keys = self._scan(b"u|", b"u}")
        for key in keys:
            self._buf[key] = None
        return [k[2:].decode() for k in keys]

    def counts(self) -> tuple[int, int]:
        return self._preds, self._labels

    # -- commit points (agents.tablestore.TableView's interface) ------------------------------
    def pending_changes(self) -> int:
        return len(self._buf)

    def take_changes(self) -> dict[bytes, Any]:
        """This batch's changes, to `send_changes` once its outputs were delivered; reads
        still see them until then."""
        changes, self._buf = self._buf, {}
        if changes:
            changes[b"m|counts"] = encode([self._preds, self._labels])
            self._inflight.append(changes)
        return changes

    async def send_changes(self, producer: Any, changes: dict[bytes, Any]) -> int:
        """The changes to the changelog (awaited: the DB must not get ahead of it), then
        to the DB in one atomic write with the changelog offset they end at."""
        if not changes:
            return 0
        producer = self.producer or producer
        records = self.records_of(changes)
        futures = []
        batch = producer.create_batch()
        for k, v in records:
            if batch.append(key=k, value=v, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, self.topic,
                                                         partition=self.partition))
                batch = producer.create_batch()
                if batch.append(key=k, value=v, timestamp=None) is None:  # larger than a batch
                    futures.append(await producer.send(self.topic, value=v, key=k,
                                                       partition=self.partition))
        if batch.record_count():
            futures.append(await producer.send_batch(batch, self.topic,
                                                     partition=self.partition))
        # A batch's metadata names its first offset: recovery may re-apply the rest of
        # it, which writes the same values again.
        offset = max([(await f).offset for f in futures])
        self.written(changes, records, offset)
        return len(records)

    @staticmethod
    def records_of(changes: dict[bytes, Any]) -> list[tuple[bytes, bytes | None]]:
        """Taken changes as changelog records: (DB key, its bytes or None)."""
        return [(k, None if v is None else v if type(v) is bytes else encode(v))
                for k, v in changes.items()]

    def written(self, changes: dict[bytes, Any], records: list[tuple[bytes, bytes | None]],
                offset: int) -> None:
        """The changelog has `changes` (as `records`, ending at `offset`): into the DB, and
        out of the layers reads go through."""
        if self.db is not None:  # closed: revoked meanwhile; the changelog has it
            self.apply(records, offset)
        if self._inflight and self._inflight[0] is changes:
            self._inflight.pop(0)

    def clear_local(self) -> None:
        """Revoked: close the DB (its files stay for a later assignment)."""
        self.close()


def changelog_consumer(settings: Any) -> Any:
    """An aiokafka consumer without group, to read a changelog partition it assigns."""
    from aiokafka import AIOKafkaConsumer

    from agents.kafka_auth import aiokafka_kwargs

    return AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                            enable_auto_commit=False, auto_offset_reset="earliest",
                            **aiokafka_kwargs(settings))


async def changelog_producer(settings: Any) -> Any:
    """A started aiokafka producer for label-state changelogs (acks from all replicas)."""
    from aiokafka import AIOKafkaProducer

    from agents.kafka_auth import aiokafka_kwargs

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                linger_ms=5, max_batch_size=512 * 1024,
                                **aiokafka_kwargs(settings))
    await producer.start()
    return producer


async def declare_compacted_topic(settings: Any, topic: str) -> None:
    """Create the changelog topic (compacted, one partition per events partition) unless
    it exists."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    from agents.kafka_auth import aiokafka_kwargs

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap,
                                **aiokafka_kwargs(settings))
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=settings.partitions,
                                                replication_factor=1,
                                                topic_configs={"cleanup.policy": "compact"})])
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()
