"""The outcome of one logged request: answered (with latency), failed, or never answered.

A `Pair` is what the window layer counts. It carries only what the statistics and
sinks need, and converts to and from a compact JSON-able list for state stores
(Faust tables' changelogs) and the `predlog.pairs` topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from stream.events import ModelRef

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

    def to_state(self) -> list:
        """A compact JSON-able form.

        >>> p = Pair(ModelRef("iris", "ns", "clf", "p", "v1"), "r1", 10**10, 10**10 + 250_000_000,
        ...          ("a",), [[1]])
        >>> Pair.from_state(p.to_state()) == p
        True
        """
        m = self.model
        return [m.model, m.namespace, m.node, m.predictor, m.version, self.request_id,
                self.request_time, self.response_time, self.feature_names, self.rows,
                self.output_names, self.outputs, self.error_type, self.error, self.entry]

    @classmethod
    def from_state(cls, s: list) -> Pair:
        return cls(ModelRef(s[0], s[1], s[2], s[3], s[4]), s[5], s[6], s[7],
                   tuple(s[8]) if s[8] is not None else None, s[9],
                   tuple(s[10]) if s[10] is not None else None, s[11], s[12], s[13], s[14])


@dataclass(slots=True)
class OrphanResponse:
    """A response whose request never arrived within the pairing TTL."""

    model: ModelRef
    request_id: str
    response_time: int  # ns since the epoch


def encode_outcome(outcome: Pair | OrphanResponse, source: int, watermark: float) -> bytes:
    """The `predlog.pairs` record: an outcome, its stage-1 partition and that stage's watermark
    (times: int ns; a watermark of -inf, before any event, is written as null).

    >>> m = ModelRef("iris", "ns", "clf", "p", "v1")
    >>> t = 1_793_491_205_123_456_789  # 2026, ns: more digits than a float keeps
    >>> o, src, wm = decode_outcome(encode_outcome(OrphanResponse(m, "r9", t), 2, t - 1))
    >>> (o.model.version, o.request_id, o.response_time == t, src, wm == t - 1)
    ('v1', 'r9', True, 2, True)
    """
    if isinstance(outcome, OrphanResponse):
        m = outcome.model
        body = ["o", [m.model, m.namespace, m.node, m.predictor, m.version, outcome.request_id,
                      outcome.response_time]]
    else:
        body = ["p", outcome.to_state()]
    wm = watermark if watermark != float("-inf") else None
    return orjson.dumps([source, wm, *body])


def encode_joined(joined: Any, source: int, watermark: float) -> bytes:
    """A label joined to a prediction in stage 1, for the prediction's window in stage 2."""
    p, label = joined.prediction, joined.label
    m = p.model
    state = [m.model, m.namespace, m.node, m.predictor, m.version, p.request_id, p.row, p.time,
             p.window_id, p.output, p.output_names, label.value, label.time, label.source]
    return orjson.dumps([source, watermark if watermark != float("-inf") else None, "l",
                         state])


def joined_from_state(state: list) -> Any:
    from stream.decode.labels import Label
    from stream.labels import JoinedLabel, Prediction

    names = tuple(state[10]) if state[10] is not None else None
    prediction = Prediction(state[5], state[6], ModelRef(*state[:5]), state[7], state[8],
                            state[9], names)
    return JoinedLabel(prediction, Label(state[5], state[6], state[11], state[12], state[13]))


def encode_heartbeat(source: int, watermark: float) -> bytes:
    """A watermark-only record: stage 1 tells every stage-2 partition how far it has got."""
    return orjson.dumps([source, watermark if watermark != float("-inf") else None, "h", None])


def decode_outcome(raw: bytes) -> tuple[Any, int, float]:
    """(a Pair, OrphanResponse or JoinedLabel, or None for a heartbeat; source; watermark)."""
    return _from_record(orjson.loads(raw))


def _from_record(record: list) -> tuple[Any, int, float]:
    source, wm, kind, state = record
    watermark = float("-inf") if wm is None else wm
    if kind == "h":
        return None, source, watermark
    if kind == "l":
        return joined_from_state(state), source, watermark
    if kind == "o":
        return (OrphanResponse(ModelRef(*state[:5]), state[5], state[6]), source, watermark)
    return Pair.from_state(state), source, watermark


def encode_records(records: list[bytes], max_bytes: int = 256 * 1024) -> list[bytes]:
    """Encoded records → as few `predlog.pairs` messages as fit `max_bytes` each, in order.

    One message per stage-1 batch and stage-2 partition instead of one per outcome: a
    consumed message costs the stage-2 agent far more than decoding a list.

    >>> m = ModelRef("iris", "ns", "clf", "p", "v1")
    >>> recs = [encode_outcome(OrphanResponse(m, f"r{i}", 1), 0, 2) for i in range(3)]
    >>> [len(decode_outcomes(msg)) for msg in encode_records(recs, max_bytes=120)]
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
