"""`predlog ingest`: the HTTP receiver a Seldon or KServe logger URL points at.

POST a CloudEvent (binary or structured mode) to any path. The event is validated
and decoded (`stream.decode.ingest`), produced to the events topic with the request
id as key, and answered 202 only after the broker acknowledged it. An event that
cannot be decoded is produced to the dead-letter topic and answered 400 with the
reason; nothing is dropped silently. GET /healthz, /readyz and /metrics.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from agents.kafka_auth import aiokafka_kwargs
from agents.settings import Settings, make_redactor
from stream.deadletters import dead_letter_headers
from stream.decode.ingest import http_to_kafka
from stream.events import DeadLetter, SourceCoords

log = logging.getLogger("predlog.ingest")


@dataclass
class IngestMetrics:
    registry: CollectorRegistry
    accepted: Counter
    rejected: Counter

    @classmethod
    def create(cls) -> IngestMetrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            accepted=Counter("predlog_ingest_events_accepted", "Events produced to Kafka",
                             ["event_type"], registry=registry),
            rejected=Counter("predlog_ingest_events_rejected",
                             "Events refused (and dead-lettered where possible), by reason",
                             ["reason"], registry=registry),
        )


PRODUCER = web.AppKey("producer", AIOKafkaProducer)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", IngestMetrics)


def _authorized(request: web.Request, settings: Settings) -> bool:
    if settings.ingest_token is None:
        return True
    expected = f"Bearer {settings.ingest_token.get_secret_value()}".encode()
    given = request.headers.get("Authorization", "").encode()
    return hmac.compare_digest(given, expected)


async def _dead_letter(app: web.Application, dl: DeadLetter) -> None:
    settings = app[SETTINGS]
    dl = make_redactor(settings).dead_letter(dl)
    await app[PRODUCER].send_and_wait(
        settings.topic_dlq, value=dl.raw, headers=dead_letter_headers(dl)
    )
    app[METRICS].rejected.labels(dl.reason).inc()


async def receive(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    if not _authorized(request, settings):
        app[METRICS].rejected.labels("unauthorized").inc()
        return web.json_response({"error": "unauthorized"}, status=401,
                                 headers={"WWW-Authenticate": "Bearer"})
    headers = dict(request.headers)
    length = request.content_length
    if length is not None and length > settings.ingest_max_body_bytes:
        await _dead_letter(app, DeadLetter(
            "payload_too_large", f"{length} bytes > limit {settings.ingest_max_body_bytes}",
            b"", {k.lower(): v for k, v in headers.items()},
            SourceCoords(kind="http", path=request.path)))
        return web.json_response({"error": "payload_too_large"}, status=413)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        await _dead_letter(app, DeadLetter(
            "payload_too_large", f"body over limit {settings.ingest_max_body_bytes}", b"",
            {k.lower(): v for k, v in headers.items()},
            SourceCoords(kind="http", path=request.path)))
        return web.json_response({"error": "payload_too_large"}, status=413)
    result = http_to_kafka(headers, body, request.path)
    if isinstance(result, DeadLetter):
        await _dead_letter(app, result)
        return web.json_response({"error": result.reason, "detail": result.detail}, status=400)
    await app[PRODUCER].send_and_wait(
        settings.topic_events, key=result.key, value=result.value, headers=result.headers
    )
    app[METRICS].accepted.labels(result.event.kind.value).inc()
    return web.json_response({"accepted": result.event.request_id}, status=202)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    producer = request.app[PRODUCER]
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=2.0)
    except Exception as exc:  # not ready: the broker does not answer
        return web.json_response({"status": "not ready", "error": str(exc)}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _start_with_retries(producer: AIOKafkaProducer, bootstrap: str) -> None:
    """Start the producer, retrying while the broker is unreachable (up to ~60 s)."""
    retrying = AsyncRetrying(
        stop=stop_after_delay(60), wait=wait_exponential(multiplier=0.5, max=5),
        retry=retry_if_exception_type(KafkaConnectionError), reraise=True,
        before_sleep=lambda rs: log.warning("Kafka %s not reachable yet (attempt %d)",
                                            bootstrap, rs.attempt_number),
    )
    async for attempt in retrying:
        with attempt:
            await producer.start()


def make_app(settings: Settings) -> web.Application:
    # aiohttp refuses bodies over client_max_size with 413 while reading.
    app = web.Application(client_max_size=settings.ingest_max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = IngestMetrics.create()

    async def producer_ctx(app: web.Application):
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            max_request_size=max(settings.ingest_max_body_bytes + 65536, 1048576),
            **aiokafka_kwargs(settings),
        )
        await _start_with_retries(producer, settings.kafka_bootstrap)
        app[PRODUCER] = producer
        yield
        await producer.stop()  # flushes what is in flight (graceful shutdown)

    app.cleanup_ctx.append(producer_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/{tail:.*}", receive)
    return app


def run_ingest(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish, then the producer flushes."""
    if settings.event_loop == "uvloop":  # as the worker: less CPU per request than asyncio's
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # One access-log line per logged event is a log line per prediction: off unless asked.
    access_log = logging.getLogger("aiohttp.access") if settings.ingest_access_log else None
    try:
        web.run_app(make_app(settings), host=settings.ingest_host, port=settings.ingest_port,
                    shutdown_timeout=30.0, print=lambda msg: log.info(msg),
                    access_log=access_log)
    except KafkaConnectionError as exc:
        msg = f"predlog ingest: Kafka {settings.kafka_bootstrap} unreachable: {exc}"
        raise SystemExit(msg) from None
