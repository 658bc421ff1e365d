"""`ElasticsearchSink` against the real Elasticsearch: a document refused for good (a
feature that was numeric arrives as a string: a mapping conflict) is kept as a rejection
for the driver to dead-letter, and the rest of the bulk still lands.

Before the fix the sink raised `DocumentRejected` out of `flush()`; in a worker that
stopped the stage, and the restarted worker met the same document again (a crash loop).
"""

from __future__ import annotations

import uuid

import pytest
from elasticsearch import Elasticsearch

from sinks.elasticsearch import ElasticsearchSink
from stream.events import ModelRef
from stream.eventtime import seconds_to_ns as ns
from stream.pairs import Pair

T0 = 1_793_491_200.0  # 2026-11-01T00:00:00Z


def _pair(rid: str, t: float, value) -> Pair:
    return Pair(ModelRef("iris", "ns", "clf", "p", "v1"), rid, ns(t), ns(t + 0.1), ("a", "b"),
                [[1.0, value]], ("proba",), [[0.7]])


@pytest.fixture
def es(stack):
    client = Elasticsearch(stack.elasticsearch_url, request_timeout=30)
    yield client
    client.close()


def test_a_mapping_conflict_is_rejected_and_the_rest_of_the_bulk_lands(es):
    prefix = f"itsink{uuid.uuid4().hex[:8]}"
    template = prefix + "-predictions-{namespace}-{model}-{date}"
    pattern = f"{prefix}-predictions-*"
    sink = ElasticsearchSink(es, index_template=template)
    sink.install_templates()
    try:
        sink.add_pair(_pair("r1", T0, 2.5))
        assert sink.flush() == 1  # features.b is mapped as a number now
        assert sink.take_rejected() == []
        sink.add_pair(_pair("r2", T0 + 1, 3.5))
        sink.add_pair(_pair("poison", T0 + 2, "not a number"))
        sink.add_pair(_pair("r3", T0 + 3, 4.5))
        assert sink.flush() == 2
        assert len(sink) == 0
        [rejection] = sink.take_rejected()
        assert rejection.doc_id == "poison"
        assert rejection.document["features"] == {"a": 1.0, "b": "not a number"}
        assert rejection.index.startswith(f"{prefix}-predictions-ns-iris-")
        assert rejection.error["status"] == 400
        assert "parsing_exception" in rejection.error["error"]["type"]
        assert sink.take_rejected() == []  # taken once
        es.indices.refresh(index=pattern)
        hits = es.search(index=pattern, size=10)["hits"]["hits"]
        assert sorted(h["_id"] for h in hits) == ["r1", "r2", "r3"]
    finally:
        es.indices.delete(index=pattern, ignore_unavailable=True, allow_no_indices=True)


def test_segment_values_are_kept_in_window_documents_without_mapping_them(es):
    """A window summary's `segments` is keyed by segment values (issue 16 item 2): kept in
    the document, not indexed, so neither many values over time nor a value whose numbers
    change type can grow or break the windows index's mapping."""
    from sinks.elasticsearch import windows_index
    from stream.window_summary import WindowSummary
    from stream.windows import WindowKey

    model = f"itseg{uuid.uuid4().hex[:8]}"
    t0 = 1_930_435_200.0  # 2031-03-04: a month of its own, so this test creates the index
    keys = [WindowKey("ns", model, "v1", "clf", ns(t0 + 300 * i), ns(300)) for i in range(2)]
    entries = [{"north": {"requests": 3, "performance": {"labels": 0, "accuracy": 0.5}}},
               {"north": {"requests": 2, "performance": {"labels": 1, "accuracy": "n/a"}},
                "south": {"requests": 1}}]
    sink = ElasticsearchSink(es)
    sink.install_templates()
    index = windows_index(keys[0])
    try:
        for key, segments in zip(keys, entries, strict=True):
            sink.add_summary(key, WindowSummary(
                model=model, version="v1", namespace="ns", node="clf",
                window_start="2031-03-04T00:00:00Z", window_end="2031-03-04T00:05:00Z",
                requests=3, rows=3, predictions=3, errors=0, segments={"region": segments}))
        assert sink.flush() == 2
        assert sink.take_rejected() == []
        es.indices.refresh(index=index)
        hits = es.search(index=index, query={"term": {"model": model}}, size=10)["hits"]["hits"]
        assert sorted(h["_source"]["segments"]["region"]["north"]["requests"] for h in hits) \
            == [2, 3]
        mapping = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        assert mapping["segments"] == {"type": "object", "enabled": False}
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
