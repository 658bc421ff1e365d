"""Pairing and windows: arrival order, duplicates, TTLs, restarts from stored state."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.events import EventKind, ModelRef, PredictionEvent
from stream.eventtime import seconds_to_ns as ns
from stream.pairing import RequestPairer
from stream.pairs import OrphanResponse, Pair
from stream.pipeline import Pipeline, PipelineStores

M = ModelRef("iris", "ns", "clf")


# Times below are written in seconds; events carry int ns (`ns`).
def req(rid, t, node="clf"):
    return PredictionEvent(EventKind.REQUEST, rid, ModelRef("iris", "ns", node), ns(t),
                           rows=[[t]])


def resp(rid, t, node="clf", error=None):
    return PredictionEvent(EventKind.RESPONSE, rid, ModelRef("iris", "ns", node), ns(t),
                           outputs=[[1]], error_type=error)


def _events(n, seed):
    rng = random.Random(seed)
    evs = []
    for i in range(n):
        t = rng.uniform(0, 1000)
        evs.append(req(f"r{i}", t))
        if i % 7:
            evs.append(resp(f"r{i}", t + rng.uniform(0.001, 2), error="boom" if i % 5 == 0
                            else None))
        if i % 11 == 0:
            evs.append(req(f"r{i}", t))  # duplicate request
    for j in range(n // 10):
        evs.append(resp(f"orphan{j}", rng.uniform(0, 1000)))
    return evs


def _run(events, ttl=30.0):
    p = RequestPairer(ttl=ns(ttl))
    out = []
    for e in events:
        out += p.update(e)
    out += p.expire(float("inf"))
    pairs = sorted((o.request_id, o.latency_ns, o.error_type) for o in out if isinstance(o, Pair))
    orphans = sorted(o.request_id for o in out if isinstance(o, OrphanResponse))
    return pairs, orphans


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_pairs_do_not_depend_on_arrival_order(seed):
    events = _events(60, seed=1)
    shuffled = events[:]
    random.Random(seed).shuffle(shuffled)
    assert _run(shuffled) == _run(events)


def test_every_request_resolves_exactly_once():
    pairs, orphans = _run(_events(200, seed=2))
    ids = [p[0] for p in pairs]
    assert len(ids) == len(set(ids)) == 200
    unanswered = sum(1 for i in range(200) if i % 7 == 0)
    assert sum(1 for p in pairs if p[2] == "no_response") == unanswered
    assert len(orphans) == 20


def test_duplicate_response_after_pairing_is_ignored_within_the_ttl():
    p = RequestPairer(ttl=ns(10))
    assert p.update(req("a", 0.0)) == []
    assert len(p.update(resp("a", 0.5))) == 1
    assert p.update(resp("a", 0.6)) == []
    assert p.expire(ns(100)) == []  # no orphan from the duplicate


def test_unanswered_request_expires_only_after_ttl():
    p = RequestPairer(ttl=ns(10))
    p.update(req("a", 100.0))
    assert p.expire(ns(110) - 1) == []
    [pair] = p.expire(ns(110))
    assert pair.error_type == "no_response" and pair.latency_ns is None


def test_graph_nodes_pair_separately_and_only_the_entry_counts():
    p = RequestPairer(ttl=ns(10))
    out = []
    for e in (req("a", 0.0, "pre"), resp("a", 0.1, "pre"), req("a", 0.1, "clf"),
              resp("a", 0.4, "clf")):
        out += p.update(e)
    assert [(o.model.node, o.entry, o.latency_ns) for o in out] == [
        ("pre", True, ns(0.1)), ("clf", False, ns(0.3))]


def test_pairer_state_survives_a_restart_through_its_store():
    store: dict = {}
    p = RequestPairer(ttl=ns(10), store=store)
    p.update(req("a", 0.0))
    p2 = RequestPairer(ttl=ns(10), store=dict(store))  # a new process restoring the changelog
    [pair] = p2.update(resp("a", 0.2))
    assert pair.latency_ns == ns(0.2)


def test_a_restarted_pairer_remembers_the_version_a_failed_response_inherits():
    """A failed response without a version takes the node's last logged one, also after a
    restart from the store (the chaos run that found it: a restarted worker filed such
    failures under the predictor's name, a window replay did not have)."""
    def versioned(rid, t, version, error=None):
        return PredictionEvent(EventKind.RESPONSE, rid, ModelRef("iris", "ns", "clf", "p",
                                                                 version), ns(t),
                               outputs=None if error else [[1]], error_type=error)

    store: dict = {}
    p = RequestPairer(ttl=ns(10), store=store)
    p.update(req("a", 0.0))
    [ok] = p.update(versioned("a", 0.1, "v7"))
    p.update(versioned("b", 1.0, "v7"))  # the same version again: no new store write
    assert ok.model.version == "v7" and len(p) == 3  # entry, done, resp; not the memory
    assert [k for k in store if k.startswith("ver|")] == ["ver|ns|iris|clf"]

    restarted = RequestPairer(ttl=ns(10), store=dict(store))
    restarted.update(req("c", 2.0))
    [failed] = restarted.update(versioned("c", 2.1, "", error="server_error"))
    assert failed.model.version == "v7"
    [orphan] = [o for o in restarted.expire(float("inf")) if isinstance(o, OrphanResponse)]
    assert orphan.request_id == "b" and orphan.model.version == "v7"
    assert not restarted._deadlines and len(restarted) == 0
    forgetful = RequestPairer(ttl=ns(10), store={k: v for k, v in store.items()
                                                 if not k.startswith("ver|")})
    forgetful.update(req("c", 2.0))
    [failed] = forgetful.update(versioned("c", 2.1, "", error="server_error"))
    assert failed.model.version == ""  # the predictor (none here): what a restart did before


def _pipeline_summaries(events, stores=None, window=60.0):
    pipe = Pipeline(window_seconds=window, lateness=5, pairing_ttl=10, stores=stores,
                    idle_timeout=1e9)
    out = []
    for i, e in enumerate(events):
        pipe.process(e)
        if i % 10 == 0:
            out += [s for _, s in pipe.advance().summaries]
    return pipe, out


def test_pipeline_restart_from_stores_gives_the_same_summaries_as_one_run():
    events = sorted(_events(300, seed=3), key=lambda e: e.event_time)
    pipe, first = _pipeline_summaries(events)
    whole = first + [s for _, s in pipe.finish().summaries]

    # Crash after 400 events; the stores (changelogged tables) survive, in-memory state not.
    stores = PipelineStores()
    pipe1, part1 = _pipeline_summaries(events[:400], stores=stores)
    restored = PipelineStores(pending=dict(stores.pending), windows=dict(stores.windows),
                              emitted=dict(stores.emitted))
    # The worker re-reads from its last committed offset: some events are seen twice.
    pipe2, part2 = _pipeline_summaries(events[380:], stores=restored)
    restarted = part1 + part2 + [s for _, s in pipe2.finish().summaries]
    key = lambda s: (s.window_start, s.node, s.version)  # noqa: E731
    assert sorted(restarted, key=key) == sorted(whole, key=key)


def test_a_window_is_emitted_once_and_late_pairs_are_reported():
    pipe = Pipeline(window_seconds=60, lateness=0, pairing_ttl=1, idle_timeout=1e9)
    pipe.process(req("a", 10.0))
    pipe.process(resp("a", 10.5))
    pipe.process(req("b", 70.0))
    pipe.process(resp("b", 70.5))
    assert [s.requests for _, s in pipe.advance().summaries] == [1]
    pipe.process(req("c", 20.0))
    step = pipe.process(resp("c", 20.1))
    assert [p.request_id for p in step.late] == ["c"] and step.pairs == []
    assert pipe.advance().summaries == []


def test_labels_join_in_stage_one_as_in_workers_also_for_a_late_pair():
    """Replay joins labels where a worker does, in stage 1, with every answered pair: a
    pair that came after its window was emitted (late, not counted in the window's serving
    numbers) still gets its label, which revises the window. Before, replay joined labels
    in the window stage with counted pairs only, and called this label unmatched."""
    from stream.decode.labels import Label
    from stream.monitoring import Monitoring

    pipe = Pipeline(window_seconds=60, lateness=0, pairing_ttl=5,
                    monitoring=Monitoring(label_horizon=3600))
    for e in (req("a", 10.0), resp("a", 10.1), req("b", 100.0), resp("b", 100.1)):
        pipe.process(e)
    [(key, first)] = pipe.advance().summaries  # the watermark (100.1) closed [0, 60)
    assert (key.start, first.requests, first.performance["labels"]) == (0, 1, 0)
    late = pipe.process(req("c", 20.0)).late + pipe.process(resp("c", 20.1)).late
    assert [p.request_id for p in late] == ["c"]
    pipe.process_label(Label("c", 0, 1, ns(200.0), "file"))
    end = pipe.finish()
    assert end.unmatched_labels == []
    revised = [s for k, s in end.summaries if k.id == key.id]
    assert [(s.revision, s.requests, s.performance["labels"]) for s in revised] == [(1, 1, 1)]
