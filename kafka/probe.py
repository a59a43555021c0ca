#!/usr/bin/env python3
"""Is a Kafka broker really serving?  Stdlib only (runs before any venv exists).

Sends one Metadata v4 request and answers yes only when the broker lists at
least one live (registered, unfenced) broker: an open port alone is not enough,
KRaft brokers accept connections before they have caught up with the quorum.

    python3 kafka/probe.py 127.0.0.1 9092     # exit 0 = ready, 1 = not (yet)

Used by scripts/kafka.sh (readiness) and tests/kafka_broker.py.
"""
from __future__ import annotations

import socket
import struct
import sys

_METADATA = 3
_VERSION = 4  # non-flexible, supported by Kafka 1.0 ... 4.x
_CLIENT_ID = b"bounceflow-probe"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def live_brokers(host: str, port: int, timeout: float = 2.0) -> int:
    """Number of live brokers the broker at host:port reports; raises OSError."""
    body = (
        struct.pack(">hhih", _METADATA, _VERSION, 1, len(_CLIENT_ID))
        + _CLIENT_ID
        + struct.pack(">i?", 0, False)  # no topics, no auto-create
    )
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        resp = _recv_exact(sock, size)
    corr, _throttle, n_brokers = struct.unpack_from(">iii", resp, 0)
    if corr != 1:
        raise ConnectionError(f"unexpected correlation id {corr}")
    return n_brokers


def is_ready(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        return live_brokers(host, port, timeout) > 0
    except (OSError, struct.error):
        return False


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: probe.py HOST PORT")
    sys.exit(0 if is_ready(sys.argv[1], int(sys.argv[2])) else 1)
