"""Smoke test: an alert posted to the local Alertmanager reaches the webhook receiver.

Needs `deploy/stack/stack.sh up alertmanager`; the stack's Alertmanager routes every alert
to http://127.0.0.1:<stack.alert_webhook_port>/alerts, where this test listens.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

DEADLINE_S = 30.0


class _Receiver(BaseHTTPRequestHandler):
    payloads: queue.Queue  # set on the subclass per test

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            self.payloads.put((self.path, json.loads(body)))
        except ValueError:
            self.payloads.put((self.path, {"unparsable": body.decode("utf-8", "replace")}))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # keep pytest output quiet
        pass


def _wait_for(payloads: queue.Queue, alertname: str, status: str):
    """Next webhook (path, payload) for alertname's group with the given status."""
    deadline = time.monotonic() + DEADLINE_S
    seen = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"no {status} webhook for {alertname} within {DEADLINE_S}s; got {seen}")
        try:
            path, payload = payloads.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            continue
        seen.append(payload)
        if (
            payload.get("groupLabels", {}).get("alertname") == alertname
            and payload.get("status") == status
        ):
            return path, payload


def test_alert_reaches_webhook_and_resolves(stack):
    try:
        requests.get(f"{stack.alertmanager_url}/-/ready", timeout=3).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(
            f"Alertmanager not reachable at {stack.alertmanager_url} ({exc}); "
            "run deploy/stack/stack.sh up alertmanager"
        )

    payloads: queue.Queue = queue.Queue()
    handler = type("Receiver", (_Receiver,), {"payloads": payloads})
    server = ThreadingHTTPServer(("127.0.0.1", stack.alert_webhook_port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    alertname = f"PredlogSmoke_{uuid.uuid4().hex[:12]}"
    labels = {"alertname": alertname, "severity": "info", "service": "predlog-smoke"}
    annotations = {"summary": "smoke test alert", "description": f"posted by {__name__}"}
    now = datetime.now(UTC)
    alert = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://127.0.0.1/predlog-smoke",
    }
    resolved = False
    try:
        resp = requests.post(f"{stack.alertmanager_url}/api/v2/alerts", json=[alert], timeout=5)
        assert resp.status_code == 200, resp.text

        path, payload = _wait_for(payloads, alertname, "firing")
        assert path == "/alerts"
        assert payload["version"] == "4"
        assert payload["receiver"] == "webhook"
        assert payload["commonLabels"]["alertname"] == alertname
        assert len(payload["alerts"]) == 1
        got = payload["alerts"][0]
        assert got["status"] == "firing"
        assert got["labels"] == labels
        assert got["annotations"] == annotations
        assert got["generatorURL"] == alert["generatorURL"]

        # Resolve it: the stack routes with send_resolved, so a "resolved" webhook follows.
        alert["endsAt"] = datetime.now(UTC).isoformat()
        resp = requests.post(f"{stack.alertmanager_url}/api/v2/alerts", json=[alert], timeout=5)
        assert resp.status_code == 200, resp.text
        _, payload = _wait_for(payloads, alertname, "resolved")
        assert payload["alerts"][0]["status"] == "resolved"
        assert payload["alerts"][0]["labels"] == labels
        resolved = True
    finally:
        if not resolved:  # best effort: do not leave the alert firing in Alertmanager
            alert["endsAt"] = datetime.now(UTC).isoformat()
            try:
                requests.post(f"{stack.alertmanager_url}/api/v2/alerts", json=[alert], timeout=5)
            except requests.RequestException:
                pass
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
