"""The normalized prediction-log event model every decoder produces.

A model server logs a *request*, a *response* and sometimes *feedback* for one
prediction. Whatever the wire format, a decoder turns it into `PredictionEvent`
objects (or a `DeadLetter` saying why it could not). Everything downstream —
pairing, windows, statistics, sinks — sees only these records.

The records are `msgspec.Struct`s rather than dataclasses: they behave the same
(positional or keyword construction, defaults, equality, repr, frozen and hashable
`ModelRef`/`SourceCoords`), but their constructors run in C. A decoder builds
three of them per logged event, and a frozen slots dataclass costs about 0.9 µs
to construct, more than parsing the JSON body itself (bench/decode_bench.py).
`ModelRef` and `SourceCoords` hold only strings and ints, so they cannot be part
of a reference cycle: they are not tracked by the garbage collector (`gc=False`),
which makes the collections a stream of events triggers cheaper.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec


class EventKind(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"
    FEEDBACK = "feedback"


class ModelRef(msgspec.Struct, frozen=True, gc=False):
    """Who served a prediction.

    `model` is the deployment (Seldon/KServe inference service name, Seldon v2
    or MLServer model name); `node` is the Seldon graph node (`Ce-Modelid`);
    `predictor` the Seldon predictor / KServe endpoint.

    >>> ModelRef(model="iris", namespace="prod").key
    ('prod', 'iris', '')
    """

    model: str
    namespace: str = ""
    node: str = ""
    predictor: str = ""
    version: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity used for windows and metrics: namespace, model, version."""
        return (self.namespace, self.model, self.version)


class SourceCoords(msgspec.Struct, frozen=True, gc=False):
    """Where a record came from: a Kafka coordinate, a file line or an HTTP request."""

    kind: str = ""  # "kafka" | "file" | "http"
    topic: str = ""
    partition: int = -1
    offset: int = -1
    path: str = ""
    line: int = -1


class PredictionEvent(msgspec.Struct):
    """One logged request, response or feedback event.

    `rows` are the input feature rows of a request (a batch of n gives n rows);
    `outputs` the prediction rows of a response (class, probabilities or values);
    `truth` the label rows of feedback. `event_time` is int nanoseconds since the
    epoch (UTC; `stream.eventtime`).
    """

    kind: EventKind
    request_id: str
    model: ModelRef
    event_time: int
    protocol: str = ""  # seldon | tensorflow | v2 | kfserving
    source_format: str = ""  # e.g. seldon-v1-http, seldon-v1-kafka, kserve, seldon-v2, oip
    event_id: str = ""
    feature_names: tuple[str, ...] | None = None
    rows: list[list[Any]] = msgspec.field(default_factory=list)
    output_names: tuple[str, ...] | None = None
    outputs: list[list[Any]] = msgspec.field(default_factory=list)
    truth: list[Any] | None = None
    reward: float | None = None
    error: str | None = None
    error_type: str | None = None
    raw: bytes = b""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    source: SourceCoords | None = None

    @property
    def n_rows(self) -> int:
        """Rows this event carries: inputs for a request, outputs for a response."""
        if self.kind is EventKind.REQUEST:
            return len(self.rows)
        if self.kind is EventKind.RESPONSE:
            return len(self.outputs)
        return len(self.truth or ())


class DeadLetter(msgspec.Struct):
    """A record no decoder could read, with the reason and where it came from."""

    reason: str  # short, stable, usable as a metric label: invalid_json, missing_request_id, ...
    detail: str
    raw: bytes
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    source: SourceCoords | None = None


class DecodeError(ValueError):
    """Raised inside decoders; turned into a `DeadLetter` at the decoder's boundary."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
