"""The outcome of one logged request: answered (with latency), failed, or never answered.

A `Pair` is what the window layer counts. It carries only what the statistics and
sinks need, and converts to and from its state record (`stream.state.PairState`) for
state stores (Faust tables' changelogs) and the `predlog.pairs` topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from stream.events import ModelRef
from stream.state import (
    JoinedState,
    OrphanState,
    PairState,
    StateVersionError,
    encode,
    load,
    model_of,
)

NO_RESPONSE = "no_response"


@dataclass(slots=True)
class Pair:
    model: ModelRef
    request_id: str
    request_time: int  # ns since the epoch
    response_time: int | None = None  # None: never answered (after the pairing TTL)
    feature_names: tuple[str, ...] | None = None
    rows: list[list[Any]] | None = None
    output_names: tuple[str, ...] | None = None
    outputs: list[list[Any]] | None = None
    error_type: str | None = None  # None: success; NO_RESPONSE: unpaired
    error: str | None = None
    entry: bool = True  # the puid's entry node: counted once at the deployment level

    @property
    def latency_ns(self) -> int | None:
        """Response time − request time, int ns, for every answered request (failed or not)."""
        if self.response_time is None:
            return None
        return self.response_time - self.request_time

    @property
    def key(self) -> str:
        """Identity of a pair: one per request id and graph node."""
        return f"{self.request_id}|{self.model.node}"

    @property
    def n_rows(self) -> int:
        return len(self.rows or ())

    @property
    def succeeded(self) -> bool:
        return self.error_type is None

    def to_state(self) -> PairState:
        """Its state record (`stream.state.PairState`).

        >>> p = Pair(ModelRef("iris", "ns", "clf", "p", "v1"), "r1", 10**10, 10**10 + 250_000_000,
        ...          ("a",), [[1]])
        >>> Pair.from_state(p.to_state()) == p
        True
        """
        m = self.model
        return PairState(m.model, m.namespace, m.node, m.predictor, m.version, self.request_id,
                         self.request_time, self.response_time, self.feature_names, self.rows,
                         self.output_names, self.outputs, self.error_type, self.error,
                         self.entry)

    @classmethod
    def from_state(cls, s: PairState) -> Pair:
        return cls(model_of(s), s.request_id, s.request_time, s.response_time, s.feature_names,
                   s.rows, s.output_names, s.outputs, s.error_type, s.error, s.entry)


@dataclass(slots=True)
class OrphanResponse:
    """A response whose request never arrived within the pairing TTL."""

    model: ModelRef
    request_id: str
    response_time: int  # ns since the epoch


class PairsRecord(msgspec.Struct, array_like=True, frozen=True, gc=False,
                  tag="pairs-record/2"):
    """One item of a `predlog.pairs` message: an outcome or a joined label (None: a
    heartbeat), the stage-1 partition it came from and that stage's watermark (int ns;
    None before any event)."""

    source: int
    watermark: int | float | None
    item: PairState | OrphanState | JoinedState | None


def encode_outcome(outcome: Pair | OrphanResponse, source: int, watermark: float) -> bytes:
    """The `predlog.pairs` record of an outcome (times: int ns; a watermark of -inf, before
    any event, is written as null).

    >>> m = ModelRef("iris", "ns", "clf", "p", "v1")
    >>> t = 1_793_491_205_123_456_789  # 2026, ns: more digits than a float keeps
    >>> o, src, wm = decode_outcome(encode_outcome(OrphanResponse(m, "r9", t), 2, t - 1))
    >>> (o.model.version, o.request_id, o.response_time == t, src, wm == t - 1)
    ('v1', 'r9', True, 2, True)
    """
    if isinstance(outcome, OrphanResponse):
        m = outcome.model
        item: Any = OrphanState(m.model, m.namespace, m.node, m.predictor, m.version,
                                outcome.request_id, outcome.response_time)
    else:
        item = outcome.to_state()
    return _record(source, watermark, item)


def _record(source: int, watermark: float, item: Any) -> bytes:
    return encode(PairsRecord(source, watermark if watermark != float("-inf") else None, item))


def encode_joined(joined: Any, source: int, watermark: float) -> bytes:
    """A label joined to a prediction in stage 1, for the prediction's window in stage 2."""
    return _record(source, watermark, joined_to_state(joined))


def joined_to_state(joined: Any) -> JoinedState:
    p, label = joined.prediction, joined.label
    m = p.model
    return JoinedState(m.model, m.namespace, m.node, m.predictor, m.version, p.request_id,
                       p.row, p.time, p.window_id, p.output, p.output_names, label.value,
                       label.time, label.source, p.segment)


def joined_from_state(state: Any) -> Any:
    """The `JoinedLabel` of a `JoinedState` (or of its version-1 list)."""
    from stream.decode.labels import Label
    from stream.labels import JoinedLabel, Prediction

    s = load(state, JoinedState)
    prediction = Prediction(s.request_id, s.row, model_of(s), s.time, s.window_id, s.output,
                            s.output_names, s.segment)
    return JoinedLabel(prediction, Label(s.request_id, s.row, s.label_value, s.label_time,
                                         s.label_source))


def encode_heartbeat(source: int, watermark: float) -> bytes:
    """A watermark-only record: stage 1 tells every stage-2 partition how far it has got."""
    return _record(source, watermark, None)


def decode_outcome(raw: bytes) -> tuple[Any, int, float]:
    """(a Pair, OrphanResponse or JoinedLabel, or None for a heartbeat; source; watermark)."""
    return _from_record(orjson.loads(raw))


_V1_KINDS = {"p": PairState, "o": OrphanState, "l": JoinedState}


def _from_record(record: list) -> tuple[Any, int, float]:
    """One record: version 2 (`PairsRecord`), or version 1 (`[source, wm, kind, list]`,
    written before a rolling upgrade)."""
    if record and record[0] == "pairs-record/2":
        _, source, wm, item = record
        state = None if item is None else load(item)
    elif len(record) == 4 and isinstance(record[0], int) and record[2] in ("h", *_V1_KINDS):
        source, wm, kind, item = record
        state = None if kind == "h" else load(item, _V1_KINDS[kind])
    else:
        head = record[0] if record else None
        if isinstance(head, str) and head.startswith("pairs-record/"):
            raise StateVersionError(
                f"a predlog.pairs record {head!r} was written by a newer predlog; run that "
                'version on every worker: see README, "Upgrading and state"')
        raise StateVersionError(f"unreadable predlog.pairs record: {record!r:.120}")
    watermark = float("-inf") if wm is None else wm
    if state is None:
        return None, source, watermark
    if isinstance(state, JoinedState):
        return joined_from_state(state), source, watermark
    if isinstance(state, OrphanState):
        return OrphanResponse(model_of(state), state.request_id, state.response_time), \
            source, watermark
    return Pair.from_state(state), source, watermark


def encode_records(records: list[bytes], max_bytes: int = 256 * 1024) -> list[bytes]:
    """Encoded records → as few `predlog.pairs` messages as fit `max_bytes` each, in order.

    One message per stage-1 batch and stage-2 partition instead of one per outcome: a
    consumed message costs the stage-2 agent far more than decoding a list.

    >>> m = ModelRef("iris", "ns", "clf", "p", "v1")
    >>> recs = [encode_outcome(OrphanResponse(m, f"r{i}", 1), 0, 2) for i in range(3)]
    >>> [len(decode_outcomes(msg)) for msg in encode_records(recs, max_bytes=150)]
    [2, 1]
    >>> decode_outcomes(encode_heartbeat(1, 5))  # a single record reads the same way
    [(None, 1, 5)]
    """
    out: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for rec in records:
        if chunk and size + len(rec) + 1 > max_bytes:
            out.append(b"[" + b",".join(chunk) + b"]")
            chunk, size = [], 0
        chunk.append(rec)
        size += len(rec) + 1
    if chunk:
        out.append(b"[" + b",".join(chunk) + b"]")
    return out


def decode_outcomes(raw: bytes) -> list[tuple[Any, int, float]]:
    """Every (outcome, source, watermark) of a `predlog.pairs` message, in order."""
    data = orjson.loads(raw)
    if data and isinstance(data[0], list):
        return [_from_record(r) for r in data]
    return [_from_record(data)]
