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
import signal
from dataclasses import dataclass
from typing import Any

import orjson
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
from stream.events import DeadLetter, EventKind, SourceCoords

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


class Gateway:
    """The request handler of aiohttp's low-level server: POST (any path) takes one logged
    event; GET /healthz, /readyz and /metrics. No aiohttp `Application` (router,
    middlewares, signals): a bare handler under wrk served 2.5x the requests of the same
    handler behind the router, and aiohttp's own work was most of what was left of a
    request once the CloudEvents SDK stopped parsing bodies twice (README, Known limits)."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer,
                 metrics: IngestMetrics) -> None:
        self.settings = settings
        self.producer = producer
        self.metrics = metrics
        self.redactor = make_redactor(settings)
        self._accepted = {k.value: metrics.accepted.labels(k.value) for k in EventKind}
        self._gets = {"/healthz": self.healthz, "/readyz": self.readyz,
                      "/metrics": self.metrics_page}

    def make_request(self, message: Any, payload: Any, protocol: Any, writer: Any,
                     task: Any) -> web.BaseRequest:
        """aiohttp's `request_factory`: its request, with the body limit of the settings
        (`read()` refuses a longer body, chunked ones included, with 413)."""
        return web.BaseRequest(message, payload, protocol, writer, task,
                               asyncio.get_running_loop(),
                               client_max_size=self.settings.ingest_max_body_bytes)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "POST":
            return await self.receive(request)
        if request.method in ("GET", "HEAD"):
            page = self._gets.get(request.path)
            if page is not None:
                return await page()
            return _json({"error": "not found"}, 404)
        return _json({"error": "method not allowed"}, 405, {"Allow": "GET, HEAD, POST"})

    def _authorized(self, request: web.BaseRequest) -> bool:
        token = self.settings.ingest_token
        if token is None:
            return True
        expected = f"Bearer {token.get_secret_value()}".encode()
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, expected)

    async def _dead_letter(self, dl: DeadLetter) -> None:
        dl = self.redactor.dead_letter(dl)
        await self.producer.send_and_wait(self.settings.topic_dlq, value=dl.raw,
                                          headers=dead_letter_headers(dl))
        self.metrics.rejected.labels(dl.reason).inc()

    async def _too_large(self, request: web.BaseRequest, detail: str) -> web.Response:
        await self._dead_letter(DeadLetter(
            "payload_too_large", detail, b"",
            {k.lower(): v for k, v in request.headers.items()},
            SourceCoords(kind="http", path=request.path)))
        return _json({"error": "payload_too_large"}, 413)

    async def receive(self, request: web.BaseRequest) -> web.Response:
        if not self._authorized(request):
            self.metrics.rejected.labels("unauthorized").inc()
            return _json({"error": "unauthorized"}, 401, {"WWW-Authenticate": "Bearer"})
        limit = self.settings.ingest_max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            return await self._too_large(request, f"{length} bytes > limit {limit}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return await self._too_large(request, f"body over limit {limit}")
        result = http_to_kafka(dict(request.headers), body, request.path)
        if isinstance(result, DeadLetter):
            await self._dead_letter(result)
            return _json({"error": result.reason, "detail": result.detail}, 400)
        await self.producer.send_and_wait(self.settings.topic_events, key=result.key,
                                          value=result.value, headers=result.headers)
        self._accepted[result.event.kind.value].inc()
        return _json({"accepted": result.event.request_id}, 202)

    async def healthz(self) -> web.Response:
        return _json({"status": "ok"}, 200)

    async def readyz(self) -> web.Response:
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=2.0)
        except Exception as exc:  # not ready: the broker does not answer
            return _json({"status": "not ready", "error": str(exc)}, 503)
        return _json({"status": "ready"}, 200)

    async def metrics_page(self) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})


def _json(value: dict[str, str], status: int, headers: dict[str, str] | None = None
          ) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, headers=headers,
                        content_type="application/json")


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


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Serve until `stop` is set; then refuse new connections, let the requests in flight
    finish (up to 30 s) and flush the producer."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=max(settings.ingest_max_body_bytes + 65536, 1048576),
        **aiokafka_kwargs(settings),
    )
    await _start_with_retries(producer, settings.kafka_bootstrap)
    try:
        gateway = Gateway(settings, producer, IngestMetrics.create())
        # One access-log line per logged event is a log line per prediction: off unless
        # asked.
        access_log = logging.getLogger("aiohttp.access") if settings.ingest_access_log else None
        server = web.Server(gateway.handle, request_factory=gateway.make_request,
                            access_log=access_log)
        runner = web.ServerRunner(server, shutdown_timeout=30.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.ingest_host, settings.ingest_port).start()
            log.info("serving on http://%s:%s", settings.ingest_host, settings.ingest_port)
            await stop.wait()
            log.info("stopping: finishing the requests in flight")
        finally:
            await runner.cleanup()
    finally:
        await producer.stop()  # flushes what is in flight (graceful shutdown)


def run_ingest(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish, then the producer flushes."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    try:
        if settings.event_loop == "uvloop":  # as the worker: less CPU per request
            import uvloop

            uvloop.run(main())
        else:
            asyncio.run(main())
    except KafkaConnectionError as exc:
        msg = f"predlog ingest: Kafka {settings.kafka_bootstrap} unreachable: {exc}"
        raise SystemExit(msg) from None
