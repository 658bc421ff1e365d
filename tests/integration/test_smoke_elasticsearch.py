"""Smoke test: the local Elasticsearch answers the official client the way predlog uses it.

Needs `deploy/stack/stack.sh up elasticsearch`. Creates a uniquely named index with an
explicit mapping, writes documents with explicit ids (single index call and the bulk
helper), searches with a term query, checks that re-writing an id does not add a
document, and deletes the index whatever happens.

The local node is Elasticsearch's stripped integ-test distribution: it has no `GET /`
handler (so `info()`/`ping()` answer 405) and no ingest pipelines, painless or data
streams. The test sticks to index, bulk, refresh, search, count and get.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch, helpers

MAPPING = {
    "dynamic": "strict",
    "properties": {
        "prediction_id": {"type": "keyword"},
        "model_id": {"type": "keyword"},
        "score": {"type": "float"},
        "label": {"type": "keyword"},
        "ts": {"type": "date"},
    },
}


def _doc(pid: str, model: str, score: float, label: str) -> dict:
    return {
        "prediction_id": pid,
        "model_id": model,
        "score": score,
        "label": label,
        "ts": "2025-01-01T00:00:00Z",
    }


@pytest.fixture
def es(stack) -> Iterator[Elasticsearch]:
    client = Elasticsearch(stack.elasticsearch_url, request_timeout=30)
    try:
        health = client.cluster.health(wait_for_status="yellow", timeout="30s")
    except Exception as exc:  # any connection error becomes one clear failure
        client.close()
        pytest.fail(
            f"Elasticsearch not reachable at {stack.elasticsearch_url} ({exc!r}); "
            "run `deploy/stack/stack.sh up elasticsearch`"
        )
    assert health["status"] in ("green", "yellow")
    yield client
    client.close()


@pytest.fixture
def index(es: Elasticsearch) -> Iterator[str]:
    name = f"predlog-smoke-{uuid.uuid4().hex[:12]}"
    es.indices.create(
        index=name,
        mappings=MAPPING,
        settings={"number_of_shards": 1, "number_of_replicas": 0},
    )
    try:
        yield name
    finally:
        es.indices.delete(index=name, ignore_unavailable=True)
        assert not es.indices.exists(index=name)


def _ids(resp) -> set[str]:
    return {hit["_id"] for hit in resp["hits"]["hits"]}


def test_index_search_and_idempotent_rewrite(es: Elasticsearch, index: str) -> None:
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["properties"]["model_id"] == {"type": "keyword"}

    # One document through the single-document API...
    first = es.index(index=index, id="p-1", document=_doc("p-1", "model-a", 0.91, "fraud"))
    assert first["result"] == "created"

    # ...and two through the bulk helper, each with an explicit _id.
    actions = [
        {"_index": index, "_id": "p-2", "_source": _doc("p-2", "model-a", 0.12, "ok")},
        {"_index": index, "_id": "p-3", "_source": _doc("p-3", "model-b", 0.55, "ok")},
    ]
    ok, errors = helpers.bulk(es, actions, raise_on_error=False)
    assert (ok, errors) == (2, [])

    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == 3

    hits = es.search(index=index, query={"term": {"model_id": "model-a"}}, size=10)
    assert hits["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert _ids(hits) == {"p-1", "p-2"}

    hits = es.search(index=index, query={"term": {"label": "fraud"}})
    assert _ids(hits) == {"p-1"}
    assert hits["hits"]["hits"][0]["_source"]["score"] == pytest.approx(0.91)

    # Writing the same ids again (single and bulk) replaces, never duplicates.
    again = es.index(index=index, id="p-1", document=_doc("p-1", "model-a", 0.42, "ok"))
    assert again["result"] == "updated"
    assert again["_version"] == 2
    ok, errors = helpers.bulk(es, actions, raise_on_error=False)
    assert (ok, errors) == (2, [])

    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == 3
    hits = es.search(index=index, query={"term": {"model_id": "model-a"}})
    assert _ids(hits) == {"p-1", "p-2"}
    assert es.count(index=index, query={"term": {"label": "fraud"}})["count"] == 0
    assert es.get(index=index, id="p-1")["_source"]["score"] == pytest.approx(0.42)
