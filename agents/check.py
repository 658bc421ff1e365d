"""`predlog check`: every configured dependency, checked the way the worker uses it.

One `Check` per line: ``ok``, ``FAIL`` (with what to fix) or ``skip`` (not configured).

- Kafka: each bootstrap server accepts a TCP connection; a client with the worker's security
  settings (`agents/kafka_auth.py`) completes its handshake (SASL authentication, TLS);
  predlog's topics exist (events, labels, windows, dead letters; pairs when it exists), the
  events and pairs topics have ``PREDLOG_PARTITIONS`` partitions (the worker's tables are
  co-partitioned with them), and where the broker reports ACLs, predlog may read and write
  what it reads and writes.
- Elasticsearch: the cluster answers with the configured credentials, and predlog's index
  templates install (what the worker does at start-up; idempotent).
- MLflow: the tracking server answers with the credentials and CA of the settings
  (``PREDLOG_MLFLOW_TRACKING_USERNAME``/``_PASSWORD``/``_TOKEN``, ``PREDLOG_MLFLOW_CA_FILE``,
  handed to MLflow's client by `agents/mlflow_auth.py`), and predlog can create and read an
  experiment (``predlog-check``, through the MLflow sink's own code).
- References: each file of ``PREDLOG_REFERENCES`` is readable and loads with the reference
  loader the worker uses (columns and rows reported).

Each dependency gets a short timeout and no retries: a check says what is wrong now.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.settings import Settings, parse_references

TIMEOUT_SECONDS = 10
CHECK_EXPERIMENT = "predlog-check"


@dataclass(frozen=True)
class Check:
    status: str  # "ok" | "FAIL" | "skip"
    what: str
    fix: str = ""

    def line(self) -> str:
        """The line `predlog check` prints.

        >>> Check("FAIL", "kafka: x", "do y").line()
        'FAIL  kafka: x → fix: do y'
        """
        return f"{self.status:<5} {self.what}" + (f" → fix: {self.fix}" if self.fix else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:240]}" if text else type(exc).__name__


# -- Kafka ----------------------------------------------------------------------------------------
class _KafkaLog(logging.Handler):
    """The kafka client's last error, which its bootstrap timeout does not carry."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR and not message.startswith("Bootstrap failed"):
            self.last = re.sub(r"^<[^>]*>:\s*", "", message)  # drop the connection's repr


def _kafka_auth_fix(s: Settings) -> str:
    if s.kafka_security_protocol.startswith("SASL_"):
        return ("check PREDLOG_KAFKA_USERNAME / PREDLOG_KAFKA_PASSWORD (Secret predlog-kafka), "
                f"PREDLOG_KAFKA_SASL_MECHANISM={s.kafka_sasl_mechanism} and "
                f"PREDLOG_KAFKA_SECURITY_PROTOCOL={s.kafka_security_protocol} against the "
                "listener's configuration")
    return ("check PREDLOG_KAFKA_SECURITY_PROTOCOL (the listener may need SSL or SASL) and "
            "PREDLOG_KAFKA_CA_FILE")


def check_kafka(s: Settings) -> Iterator[Check]:
    unreachable = False
    for server in s.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
            yield Check("ok", f"kafka: {server.strip()} accepts connections")
        except OSError as exc:
            unreachable = True
            yield Check("FAIL", f"kafka: {server.strip()} unreachable ({_first_line(exc)})",
                        "check PREDLOG_KAFKA_BOOTSTRAP (host:port of the listener predlog "
                        "uses) and that the brokers run and are reachable from here")
    if unreachable:
        return
    from kafka import KafkaAdminClient

    from agents.kafka_auth import kafka_python_kwargs

    who = (f"{s.kafka_security_protocol}"
           + (f" {s.kafka_sasl_mechanism} as {s.kafka_username}"
              if s.kafka_security_protocol.startswith("SASL_") else ""))
    errors = _KafkaLog()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(errors)
    try:
        admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap,
                                 request_timeout_ms=TIMEOUT_SECONDS * 1000,
                                 bootstrap_timeout_ms=TIMEOUT_SECONDS * 1000,
                                 **kafka_python_kwargs(s))
    except Exception as exc:
        detail = errors.last or _first_line(exc)
        yield Check("FAIL", f"kafka: handshake ({who}) failed: {detail[:240]}",
                    _kafka_auth_fix(s))
        return
    finally:
        kafka_log.removeHandler(errors)
    try:
        yield Check("ok", f"kafka: connected ({who})")
        yield from _kafka_topics(s, admin)
    finally:
        admin.close()


# topic -> operations the worker performs on it
def _topic_needs(s: Settings) -> dict[str, tuple[str, ...]]:
    return {s.topic_events: ("READ", "WRITE"), s.topic_labels: ("READ",),
            s.topic_windows: ("WRITE",), s.topic_dlq: ("WRITE",)}


def _kafka_topics(s: Settings, admin: Any) -> Iterator[Check]:
    needs = _topic_needs(s)
    described = {d["name"]: d for d in admin.describe_topics([*needs, s.topic_pairs])}
    for topic in [*needs, s.topic_pairs]:
        d = described.get(topic) or {"error_code": 3, "partitions": []}
        if d["error_code"] == 3 or not d["partitions"]:
            if topic == s.topic_pairs:
                continue  # the worker creates its internal topic (needs CREATE on the cluster)
            yield Check("FAIL", f"kafka: topic {topic} does not exist",
                        f"create it with {s.partitions} partitions (deploy/k8s/base/kafka/"
                        f"topics.yaml, or kafka-topics.sh --bootstrap-server "
                        f"{s.kafka_bootstrap} --create --topic {topic} --partitions "
                        f"{s.partitions}), or set PREDLOG_TOPIC_* to the topic's name")
            continue
        if d["error_code"]:
            yield Check("FAIL", f"kafka: topic {topic}: error code {d['error_code']}",
                        "grant predlog's Kafka user DESCRIBE on the topic")
            continue
        n = len(d["partitions"])
        if topic in (s.topic_events, s.topic_pairs) and n != s.partitions:
            yield Check("FAIL", f"kafka: topic {topic} has {n} partitions, "
                        f"PREDLOG_PARTITIONS={s.partitions}",
                        f"set PREDLOG_PARTITIONS={n} (the worker's tables are co-partitioned "
                        "with this topic)")
            continue
        allowed = set(d.get("authorized_operations") or ())
        missing = [op for op in needs.get(topic, ("READ", "WRITE"))
                   if allowed and op not in allowed and "ALL" not in allowed]
        if missing:
            yield Check("FAIL", f"kafka: topic {topic}: not authorized to {', '.join(missing)}",
                        f"grant predlog's Kafka user {', '.join(missing)} on topic {topic}")
            continue
        yield Check("ok", f"kafka: topic {topic} exists, {n} partitions")


# -- Elasticsearch --------------------------------------------------------------------------------
def check_elasticsearch(s: Settings) -> Iterator[Check]:
    if not s.elasticsearch_url:
        yield Check("skip", "elasticsearch: PREDLOG_ELASTICSEARCH_URL is empty (sink off)")
        return
    from elasticsearch import ApiError, AuthenticationException, AuthorizationException

    from agents.elasticsearch_client import ElasticsearchRefused, elasticsearch_client, refusal
    from sinks.elasticsearch import ElasticsearchSink

    try:
        client = elasticsearch_client(s, request_timeout=TIMEOUT_SECONDS, max_retries=0)
    except ElasticsearchRefused as exc:
        yield Check("FAIL", f"elasticsearch: {exc}", "mount the CA file or fix the path")
        return
    url = s.elasticsearch_url
    try:
        # GET / is missing from the integ-test distribution; the health API is everywhere.
        health = client.cluster.health()
        yield Check("ok", f"elasticsearch: {url} answers (cluster {health['cluster_name']}, "
                          f"status {health['status']})")
    except AuthenticationException as exc:
        yield Check("FAIL", f"elasticsearch: {url} refused the credentials ({_first_line(exc)})",
                    "check PREDLOG_ELASTICSEARCH_API_KEY or PREDLOG_ELASTICSEARCH_USERNAME/"
                    "PASSWORD (Secret predlog-elasticsearch)")
        return
    except ApiError as exc:
        yield Check("FAIL", f"elasticsearch: {url} answered with an error ({_first_line(exc)})",
                    "check that PREDLOG_ELASTICSEARCH_URL points at Elasticsearch and the "
                    "credentials may read cluster health (cluster privilege monitor)")
        return
    except Exception as exc:
        tls = refusal(exc, s)
        if tls is not None:  # a failed TLS handshake
            yield Check("FAIL", f"elasticsearch: {tls}", "check PREDLOG_ELASTICSEARCH_CA_FILE")
            return
        yield Check("FAIL", f"elasticsearch: {url} unreachable ({_first_line(exc)})",
                    "check PREDLOG_ELASTICSEARCH_URL and that the cluster runs and is "
                    "reachable from here")
        return
    try:
        ElasticsearchSink(client, index_template=s.elasticsearch_index_template,
                          max_retry_seconds=TIMEOUT_SECONDS).install_templates()
        yield Check("ok", "elasticsearch: index templates predlog-predictions, predlog-windows "
                          "installed")
    except AuthorizationException as exc:
        yield Check("FAIL", f"elasticsearch: may not install index templates ({_first_line(exc)})",
                    "give predlog's API key the cluster privilege manage_index_templates and "
                    "write/create_index on predlog-*")
    except Exception as exc:
        yield Check("FAIL", f"elasticsearch: installing index templates failed "
                            f"({_first_line(exc)})", "see the Elasticsearch log")


# -- MLflow ---------------------------------------------------------------------------------------
def _mlflow_denied(exc: BaseException) -> bool:
    code = str(getattr(exc, "error_code", ""))
    return code in {"UNAUTHENTICATED", "PERMISSION_DENIED"} or any(
        t in str(exc) for t in (" 401", " 403", "Unauthorized", "Forbidden"))


def check_mlflow(s: Settings) -> Iterator[Check]:
    if not s.mlflow_tracking_uri:
        yield Check("skip", "mlflow: PREDLOG_MLFLOW_TRACKING_URI is empty (sink off)")
        return
    from mlflow import MlflowClient

    from agents.mlflow_auth import MlflowRefused, apply_mlflow_credentials
    from sinks.mlflow_sink import MlflowSink

    uri = s.mlflow_tracking_uri
    auth_fix = ("check PREDLOG_MLFLOW_TRACKING_USERNAME / PREDLOG_MLFLOW_TRACKING_PASSWORD or "
                "PREDLOG_MLFLOW_TRACKING_TOKEN (Secret predlog-mlflow) and the user's "
                "permissions")
    try:
        apply_mlflow_credentials(s)
    except MlflowRefused as exc:
        yield Check("FAIL", f"mlflow: {exc}", "mount the CA file or fix the path")
        return
    client = MlflowClient(tracking_uri=uri)
    try:
        client.search_experiments(max_results=1)
        yield Check("ok", f"mlflow: {uri} answers")
    except Exception as exc:
        if _mlflow_denied(exc):
            yield Check("FAIL", f"mlflow: {uri} refused the credentials ({_first_line(exc)})",
                        auth_fix)
        else:
            yield Check("FAIL", f"mlflow: {uri} unreachable ({_first_line(exc)})",
                        "check PREDLOG_MLFLOW_TRACKING_URI and that the tracking server runs "
                        "and is reachable from here")
        return
    try:
        exp_id = MlflowSink(uri, client=client, attempts=1).experiment_id(CHECK_EXPERIMENT)
        client.get_experiment(exp_id)
        yield Check("ok", f"mlflow: can create and read experiments ({CHECK_EXPERIMENT} "
                          f"id {exp_id})")
    except Exception as exc:
        yield Check("FAIL", f"mlflow: cannot create/read experiment {CHECK_EXPERIMENT} "
                            f"({_first_line(exc)})",
                    auth_fix if _mlflow_denied(exc) else "see the tracking server's log")


# -- references -----------------------------------------------------------------------------------
def check_references(s: Settings) -> Iterator[Check]:
    refs = parse_references(s.references)
    if not refs:
        yield Check("skip", "references: PREDLOG_REFERENCES is empty (no data drift)")
        return
    from agents.reference_cli import load_reference

    for model, path in refs.items():
        name = "every model" if model == "*" else model
        p = Path(path)
        if not p.is_file() or not os.access(p, os.R_OK):
            yield Check("FAIL", f"reference for {name}: {path} is not a readable file",
                        "mount the file (a ConfigMap or volume) at that path, or fix "
                        "PREDLOG_REFERENCES (\"[MODEL=]FILE,...\")")
            continue
        try:
            profile = load_reference(p)
        except Exception as exc:
            yield Check("FAIL", f"reference for {name}: {path} does not load "
                                f"({_first_line(exc)})",
                        "give a CSV/Parquet file with a header row, or a profile built with "
                        "`predlog reference build`")
            continue
        features = list(profile.features)
        if not features:
            yield Check("FAIL", f"reference for {name}: {path} has no usable feature column",
                        "check the file's columns and roles (`predlog reference build`)")
            continue
        shown = ", ".join(features[:8]) + (", …" if len(features) > 8 else "")
        yield Check("ok", f"reference for {name}: {path}, {profile.rows} rows, "
                          f"{len(features)} features ({shown})")


CHECKS: tuple[Callable[[Settings], Iterator[Check]], ...] = (
    check_kafka, check_elasticsearch, check_mlflow, check_references)


def run_checks(settings: Settings, emit: Callable[[Check], None] = lambda c: None) -> list[Check]:
    """Every check, in order; `emit` sees each result as it comes."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # read by the MLflow client
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(TIMEOUT_SECONDS)
    out: list[Check] = []
    for check in CHECKS:
        try:
            for result in check(settings):
                emit(result)
                out.append(result)
        except Exception as exc:  # a bug in a check must still show as a failure
            out.append(Check("FAIL", f"{check.__name__}: {_first_line(exc)}", "report this"))
            emit(out[-1])
    return out
