"""Pair logged requests with their responses, in any arrival order.

Keyed by request id and graph node (a multi-node Seldon graph logs one pair per
node under one puid). State lives in an injected mapping — a dict for replay, a
changelogged Faust table in workers — holding compact lists, so a restarted
worker rebuilds exactly the pending state it had. Time is event time: `expire`
takes the watermark; nothing here reads a clock.

- A duplicate request or response (same id and node) is ignored, also after the
  pair was made: a `done` marker stays for the TTL.
- A request unanswered when the watermark passes its time + TTL becomes a `Pair`
  with error type `no_response`.
- A response whose request has not arrived by its time + TTL becomes an
  `OrphanResponse`.
- The first node whose request is seen for a puid is its *entry* node: only its
  pairs count at the deployment level, so one puid is never counted twice.
- Model version: the one the event carried (OIP `model_version`, an image tag),
  else the last one a response of the same node carried, else the predictor, so a
  failed response without metadata lands in the same series as the answered ones. That
  memory is state too (a `VersionState` per node, written when the version changes,
  never expired): a restarted worker resolves versions as the one before it did.
"""

from __future__ import annotations

import heapq
from collections.abc import MutableMapping
from typing import Any

from stream.events import EventKind, ModelRef, PredictionEvent
from stream.pairs import NO_RESPONSE, OrphanResponse, Pair
from stream.state import (
    DoneState,
    EntryState,
    RequestState,
    ResponseState,
    VersionState,
    upgrade,
)

Outcome = Pair | OrphanResponse
KINDS = {"entry": EntryState, "req": RequestState, "resp": ResponseState, "done": DoneState,
         "ver": VersionState}


class RequestPairer:
    """Pairs requests and responses; see the module docstring.

    >>> from stream.events import ModelRef
    >>> from stream.eventtime import NS
    >>> m = ModelRef("iris", "ns", "clf")
    >>> p = RequestPairer(ttl=60 * NS)
    >>> p.update(PredictionEvent(EventKind.RESPONSE, "r1", m, 10_500_000_000, outputs=[[1]]))
    []
    >>> [pair.latency_ns for pair in p.update(PredictionEvent(EventKind.REQUEST, "r1", m, 10 * NS,
    ...                                                       rows=[[0.1, 0.2]]))]
    [500000000]
    >>> p.update(PredictionEvent(EventKind.REQUEST, "r2", m, 20 * NS, rows=[[1, 2]]))
    []
    >>> [(o.request_id, o.error_type) for o in p.expire(watermark=80 * NS)]
    [('r2', 'no_response')]
    """

    def __init__(self, ttl: int, store: MutableMapping[str, Any] | None = None) -> None:
        """`ttl`: int ns."""
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self._store: MutableMapping[str, Any] = {} if store is None else store
        self._deadlines: list[tuple[int, str]] = []
        self._versions: dict[tuple[str, str, str], str] = {}
        self.rebuild_index()

    def rebuild_index(self) -> None:
        """Re-derive the expiry index from the store (after a restart or a rebalance)."""
        self._deadlines = []
        self._versions = {}
        upgrade(self._store, lambda key: KINDS.get(key.partition("|")[0]))
        for key, state in self._store.items():
            if isinstance(state, VersionState):
                self._versions[(state.namespace, state.model, state.node)] = state.version
            else:
                heapq.heappush(self._deadlines, (state.time + self.ttl, key))

    def __len__(self) -> int:
        """Pending entries (requests, responses, entry and done markers); not the version
        memory."""
        return len(self._store) - len(self._versions)

    @staticmethod
    def _base(m: ModelRef, request_id: str) -> str:
        return f"{m.namespace}|{m.model}|{request_id}"

    def _put(self, key: str, state: Any) -> None:
        self._store[key] = state
        heapq.heappush(self._deadlines, (state.time + self.ttl, key))

    def update(self, event: PredictionEvent) -> list[Outcome]:
        """Feed one event; returns the pairs it completed (usually zero or one)."""
        m = event.model
        base = self._base(m, event.request_id)
        node_key = f"{base}|{m.node}"
        store = self._store
        req_key, resp_key = f"req|{node_key}", f"resp|{node_key}"
        if event.kind is EventKind.REQUEST:
            if req_key in store or f"done|{node_key}" in store:
                return []
            entry_key = f"entry|{base}"
            entry_state = store.get(entry_key)
            if entry_state is None:
                entry_state = EntryState(event.event_time, m.node)
                self._put(entry_key, entry_state)
            entry = entry_state.node == m.node
            request = RequestState(event.event_time, m.model, m.namespace, m.node, m.predictor,
                                   m.version, event.request_id, event.feature_names, event.rows,
                                   entry)
            response = store.get(resp_key)
            if response is None:
                self._put(req_key, request)
                return []
            del store[resp_key]
            return [self._pair(node_key, request, response)]
        if event.kind is EventKind.RESPONSE:
            if resp_key in store or f"done|{node_key}" in store:
                return []
            response = ResponseState(event.event_time, m.version, event.output_names,
                                     event.outputs, event.error_type, event.error)
            if m.version:
                self._remember(m, m.version)
            waiting = store.get(req_key)
            if waiting is None:
                self._put(resp_key, response)
                return []
            del store[req_key]
            return [self._pair(node_key, waiting, response)]
        return []

    def _remember(self, m: ModelRef, version: str) -> None:
        node = (m.namespace, m.model, m.node)
        if self._versions.get(node) != version:  # a store write only when it changes
            self._versions[node] = version
            self._store["ver|" + "|".join(node)] = VersionState(*node, version)

    def _pair(self, node_key: str, request: RequestState, response: ResponseState) -> Pair:
        self._put(f"done|{node_key}", DoneState(response.time))
        q = request
        version = self._version(q.namespace, q.model, q.node, q.predictor,
                                response.version or q.version)
        return Pair(ModelRef(q.model, q.namespace, q.node, q.predictor, version), q.request_id,
                    q.time, response.time, q.feature_names, q.rows, response.output_names,
                    response.outputs, response.error_type, response.error, q.entry)

    def _version(self, ns: str, model: str, node: str, predictor: str, version: str) -> str:
        return version or self._versions.get((ns, model, node)) or predictor

    def expire(self, watermark: float) -> list[Outcome]:
        """Resolve everything whose TTL the watermark (int ns, or ±inf) has passed, oldest
        first."""
        out: list[Outcome] = []
        # Locals: every request logs three deadlines (entry, request or response, done).
        deadlines, store, ttl, pop = self._deadlines, self._store, self.ttl, heapq.heappop
        while deadlines and deadlines[0][0] <= watermark:
            deadline, key = pop(deadlines)
            state = store.get(key)
            if state is None or state.time + ttl != deadline:
                continue  # already resolved, or re-put with a newer deadline
            del store[key]
            kind, _, rest = key.partition("|")
            if kind == "req":
                q = state
                version = self._version(q.namespace, q.model, q.node, q.predictor, q.version)
                out.append(Pair(ModelRef(q.model, q.namespace, q.node, q.predictor, version),
                                q.request_id, q.time, None, q.feature_names, q.rows,
                                error_type=NO_RESPONSE, error="no response within the TTL",
                                entry=q.entry))
            elif kind == "resp":
                ns, model, rest = rest.split("|", 2)
                rid, node = rest.rsplit("|", 1)  # a request id may itself hold "|"
                version = self._version(ns, model, node, "", state.version)
                out.append(OrphanResponse(ModelRef(model, ns, node, "", version), rid,
                                          state.time))
        return out
