"""Typed, versioned state: what the stages keep in their stores and send between them.

Every value a stage stores per key (pending requests and responses, pairs waiting in
their window, predictions and labels waiting for each other) and every item stage 1
sends stage 2 on `predlog.pairs` is one of the `msgspec.Struct`s below. Each is
`array_like` and tagged `"<kind>/<version>"`, so it travels as a JSON array whose first
element names its layout:

>>> import msgspec
>>> msgspec.json.encode(DoneState(5))
b'["done/2",5]'
>>> load(msgspec.json.decode(b'["done/2",5]'))
DoneState(time=5)

Version 1 was the untagged positional lists of the release before these records (same
fields, same order, no tag, times in int ns); lists of an older release, with float
seconds, are refused. `load` reads both: a version-1 list is recognised by its store key's
kind and its length, and a state of a version this release does not know — written by
a newer predlog — is refused with `StateVersionError`, which names the way out.
Values built here are never mutated in place (`frozen`): a store holding one sees every
change as a new value, which is what a changelogged table needs.

Deterministic, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import msgspec

from stream.events import ModelRef

VERSION = 2  # the version of every state written by this release


class StateVersionError(ValueError):
    """A stored state this release cannot read (written by a newer or unknown predlog)."""


class _State(msgspec.Struct, array_like=True, frozen=True, gc=False):
    pass


# --- stage 1: pairing (stream.pairing) --------------------------------------------------

class EntryState(_State, frozen=True, tag="entry/2"):
    """The first graph node whose request was seen for a puid (its entry node)."""

    time: int
    node: str


class RequestState(_State, frozen=True, tag="request/2"):
    """A logged request waiting for its response."""

    time: int
    model: str
    namespace: str
    node: str
    predictor: str
    version: str
    request_id: str
    feature_names: tuple[str, ...] | None
    rows: Any
    entry: bool


class ResponseState(_State, frozen=True, tag="response/2"):
    """A logged response waiting for its request."""

    time: int
    version: str
    output_names: tuple[str, ...] | None
    outputs: Any
    error_type: str | None
    error: str | None


class DoneState(_State, frozen=True, tag="done/2"):
    """A paired request id and node: later copies are duplicates (kept for the TTL)."""

    time: int


class VersionState(_State, frozen=True, tag="version/2"):
    """The model version a response of this graph node last carried: what a later response
    without one (a failure without metadata) inherits. Never expires."""

    namespace: str
    model: str
    node: str
    version: str


# --- stage 2: windows (stream.windows) and the predlog.pairs items -----------------------

class _Served(_State, frozen=True):
    """The leading fields of what names its model (a `ModelRef`, flat) and request."""

    model: str
    namespace: str
    node: str
    predictor: str
    version: str
    request_id: str


class PairState(_Served, frozen=True, tag="pair/2"):
    """A `Pair` (`stream.pairs`), flat."""

    request_time: int
    response_time: int | None
    feature_names: tuple[str, ...] | None
    rows: Any
    output_names: tuple[str, ...] | None
    outputs: Any
    error_type: str | None
    error: str | None
    entry: bool


class OrphanMark(_State, frozen=True, tag="orphan-mark/2"):
    """A response without request, counted in its window (the key says which)."""


class OrphanState(_Served, frozen=True, tag="orphan/2"):
    """An `OrphanResponse` (`stream.pairs`) on its way to its window."""

    response_time: int


# --- label joins (stream.labels) ----------------------------------------------------------

class PredictionState(_State, frozen=True, tag="prediction/2"):
    """A predicted row waiting for its label (`labelled` once one joined)."""

    time: int
    request_id: str
    row: int
    model: str
    namespace: str
    node: str
    predictor: str
    version: str
    window_id: str
    output: Any
    output_names: tuple[str, ...] | None
    labelled: bool
    # Its segments, ((column, value), ...) (`stream.segments.Segmenter.tags`); None
    # without segment columns. Trailing and optional: a state written before it was
    # added reads as None.
    segment: tuple[tuple[str, str], ...] | None = None


class LabelState(_State, frozen=True, tag="label/2"):
    """A label waiting for its prediction. `anchor` is what its horizon counts from: the
    label's time, or the watermark when it arrived without one (None until then)."""

    anchor: int | float | None
    request_id: str
    row: int
    value: Any
    time: int | None
    source: str
    joined: bool


class JoinedState(_Served, frozen=True, tag="joined/2"):
    """A `JoinedLabel`: a prediction and its label, flat (stage 1 → the window's stage 2)."""

    row: int
    time: int
    window_id: str
    output: Any
    output_names: tuple[str, ...] | None
    label_value: Any
    label_time: int | None
    label_source: str
    segment: tuple[tuple[str, str], ...] | None = None  # as PredictionState's


# --- stage 2: a reference from a model's own traffic (stream.drift.bootstrap) -----------

class BootstrapState(_State, frozen=True, tag="bootstrap/2"):
    """A bootstrap reference: the first window's start and the end of the last one taken
    (int ns), whether it is complete and its profile was announced (sent to MLflow), its
    rows as columns (`columns[name][i]`: row i's value of feature `name`, None where the
    row had none) and the rows' prediction values."""

    start: int
    end: int
    complete: bool
    announced: bool
    rows: int
    columns: dict[str, list[Any]]
    predictions: list[Any]


KINDS: tuple[type[_State], ...] = (
    EntryState, RequestState, ResponseState, DoneState, VersionState, PairState, OrphanMark,
    OrphanState, PredictionState, LabelState, JoinedState, BootstrapState)
_TAGS = {cls.__struct_config__.tag: cls for cls in KINDS}
_TAG_OF = {cls: tag for tag, cls in _TAGS.items()}
# Version 1: the untagged positional list of each kind (its fields without the optional
# trailing ones added since, in order).
_V1 = {cls: len(cls.__struct_fields__) - len(cls.__struct_defaults__) for cls in KINDS}
# How many fields a version-2 state of each kind holds: its required fields, and any of
# the optional trailing ones (a field added with a default is read from states without it).
_LENGTHS = {cls: range(_V1[cls], len(cls.__struct_fields__) + 1) for cls in KINDS}
_V1[OrphanMark] = 1  # `[0]`


def model_of(s: _Served) -> ModelRef:
    return ModelRef(s.model, s.namespace, s.node, s.predictor, s.version)


def load(value: Any, kind: type | None = None) -> Any:
    """A stored or received value as its state object.

    A state object is returned as it is; a tagged list (what JSON decoding of a version-2
    state gives, e.g. after a changelog recovery) becomes its object; an untagged list
    is read as the version-1 layout of `kind` (the store key says which kind). Refused:
    a tag of another version or an unknown kind, and a list that fits no layout.

    >>> load(["request/2", 1, "iris", "ns", "n", "p", "v", "r1", ["a"], [[1]], True]).feature_names
    ('a',)
    >>> load([7, "n1"], EntryState)  # version 1
    EntryState(time=7, node='n1')
    >>> load(["prediction/2", 1, "r", 0, "m", "", "", "", "", "w", [0.5], None, False]).segment
    >>> load(["done/3", 5])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stream.state.StateVersionError: state 'done/3' was written by a newer predlog ...
    """
    if isinstance(value, _State):
        return value
    if not isinstance(value, list | tuple):
        raise StateVersionError(f"expected a state (a list), got {type(value).__name__}: "
                                f"{value!r:.80}")
    head = value[0] if value else None
    if isinstance(head, str):
        cls = _TAGS.get(head)
        if cls is not None and len(value) - 1 in _LENGTHS[cls]:
            return msgspec.convert(value, cls)
        name, sep, version = head.rpartition("/")
        if sep and version.isdigit() and (name + "/2") in _TAGS and int(version) != VERSION:
            raise StateVersionError(
                f"state {head!r} was written by a newer predlog (this one reads version 1 "
                f"and {VERSION} of {name!r}); run that version, or start from empty state: "
                'see README, "Upgrading and state"')
    if kind is not None and len(value) == _V1[kind]:
        if kind is OrphanMark:
            return OrphanMark()
        try:
            return msgspec.convert([_TAG_OF[kind], *value], kind)
        except msgspec.ValidationError as exc:  # e.g. float seconds where int ns belong
            raise StateVersionError(
                f"unreadable version-1 state for {kind.__name__} ({exc}): {value!r:.120}; "
                "state of a release before int-nanosecond time is not read: start from "
                'empty state, see README, "Upgrading and state"') from exc
    raise StateVersionError(
        f"unreadable state{f' for {kind.__name__}' if kind else ''}: {value!r:.120}; it is "
        'neither a version-1 nor a version-2 layout: see README, "Upgrading and state"')


_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """JSON of a state, or of any plain value a table holds (ints, dicts, lists).

    >>> encode({"a": [PredictionState(1, "r", 0, "m", "", "", "", "", "w", [0.5], None, 0)]})
    b'{"a":[["prediction/2",1,"r",0,"m","","","","","w",[0.5],null,0,null]]}'
    """
    return _encoder.encode(value)


def upgrade(store: MutableMapping[str, Any],
            kind_of: Callable[[str], type | None]) -> int:
    """Make every value of `store` a state object (`load`, with `kind_of(key)` for the
    version-1 layouts); returns how many were converted.

    A store recovered from a changelog holds JSON-decoded lists. A store that offers
    `replace_local(key, value)` (`agents.tablestore.TableView`) is changed locally only —
    the changelog already holds the same state, in a layout `load` reads — so a restart
    does not write its whole state again.

    >>> store = {"done|r1|n": [5], "done|r2|n": DoneState(6)}
    >>> upgrade(store, lambda key: DoneState), store["done|r1|n"]
    (1, DoneState(time=5))
    """
    replace = getattr(store, "replace_local", None)
    converted = 0
    for key in list(store.keys()):
        value = store[key]
        if isinstance(value, _State):
            continue
        state = load(value, kind_of(key))
        if replace is not None:
            replace(key, state)
        else:
            store[key] = state
        converted += 1
    return converted
