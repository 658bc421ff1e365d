"""`predlog check`'s topic rules with a fake admin client (the real broker has no ACLs to
refuse: tests/integration/test_check.py runs every other rule against the stack)."""

from __future__ import annotations

from agents.check import Check, _kafka_topics, check_elasticsearch, check_mlflow, check_references
from agents.settings import Settings


class FakeAdmin:
    def __init__(self, topics: dict[str, tuple[int, list[str] | None]]):
        self.topics = topics

    def describe_topics(self, names):
        out = []
        for name in names:
            if name not in self.topics:
                out.append({"name": name, "error_code": 3, "partitions": []})
                continue
            n, ops = self.topics[name]
            out.append({"name": name, "error_code": 0, "partitions": [{}] * n,
                        "authorized_operations": ops})
        return out


def _lines(results) -> list[str]:
    return [r.line() for r in results]


def test_acls_the_broker_reports_must_allow_what_the_worker_does():
    s = Settings(partitions=2)
    rw = ["READ", "WRITE", "DESCRIBE"]
    admin = FakeAdmin({s.topic_events: (2, ["READ", "DESCRIBE"]),  # cannot write (rekey)
                       s.topic_labels: (2, rw), s.topic_windows: (2, ["ALL"]),
                       s.topic_dlq: (2, None),  # broker reports nothing: not judged
                       s.topic_pairs: (2, rw)})
    results = list(_kafka_topics(s, admin))
    assert [r.status for r in results] == ["FAIL", "ok", "ok", "ok", "ok"]
    assert results[0] == Check("FAIL", f"kafka: topic {s.topic_events}: not authorized to WRITE",
                               f"grant predlog's Kafka user WRITE on topic {s.topic_events}")


def test_pairs_topic_is_optional_but_must_match_when_it_exists():
    s = Settings(partitions=2)
    topics = {t: (2, None) for t in (s.topic_events, s.topic_labels, s.topic_windows,
                                     s.topic_dlq)}
    assert all(r.status == "ok" for r in _kafka_topics(s, FakeAdmin(topics)))
    results = list(_kafka_topics(s, FakeAdmin({**topics, s.topic_pairs: (4, None)})))
    assert results[-1].what == (f"kafka: topic {s.topic_pairs} has 4 partitions, "
                                "PREDLOG_PARTITIONS=2")


def test_unconfigured_dependencies_are_skipped():
    s = Settings(elasticsearch_url="", mlflow_tracking_uri="", references="")
    results = [*check_elasticsearch(s), *check_mlflow(s), *check_references(s)]
    assert [r.status for r in results] == ["skip", "skip", "skip"]
