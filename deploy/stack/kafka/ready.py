"""Readiness probe for the local Kafka broker, standard library only.

    python3 ready.py HOST PORT [CLUSTER_ID]

Sends one Metadata request (v4, the oldest version Kafka 4.x still serves) and exits 0
when the answer lists at least one registered broker (a KRaft broker is listed only once
it is unfenced, i.e. can take produce/fetch) and, if given, the expected cluster id.
Exits 1 otherwise. Stdlib-only so it works before the project's venv exists.
"""

from __future__ import annotations

import socket
import struct
import sys

API_METADATA = 3
VERSION = 4


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        value = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return value


def metadata(
    host: str, port: int, timeout: float = 3.0
) -> tuple[list[tuple[int, str, int]], str | None]:
    client_id = b"predlog-ready"
    body = struct.pack(">hhih", API_METADATA, VERSION, 7, len(client_id)) + client_id
    body += struct.pack(">i?", 0, False)  # no topics, don't auto-create
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _read_exact(sock, 4))
        r = _Reader(_read_exact(sock, size))
    if r.take(">i") != 7:
        raise ValueError("correlation id mismatch")
    r.take(">i")  # throttle_time_ms
    brokers = []
    for _ in range(r.take(">i")):
        node_id = r.take(">i")
        bhost = r.string() or ""
        bport = r.take(">i")
        r.string()  # rack
        brokers.append((node_id, bhost, bport))
    cluster_id = r.string()
    return brokers, cluster_id


def main(argv: list[str]) -> int:
    host, port = argv[1], int(argv[2])
    want_cluster = argv[3] if len(argv) > 3 else None
    try:
        brokers, cluster_id = metadata(host, port)
    except (OSError, ValueError, struct.error) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    if not brokers:
        print("not ready: no broker registered yet", file=sys.stderr)
        return 1
    if want_cluster and cluster_id != want_cluster:
        print(f"not ours: cluster id {cluster_id!r}, expected {want_cluster!r}", file=sys.stderr)
        return 1
    print(f"ready: cluster {cluster_id}, brokers {brokers}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
