"""A customer's webhook endpoint, for tests, the demo and the benchmark.

Records every POST (headers and body) and answers 2xx, or fails the first
`fail_first` calls with `fail_status` so retry paths can be exercised.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bounceflow.observability import HttpServer


@dataclass
class ReceivedCall:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.time)


class WebhookSink:
    """An HTTP server on loopback that collects webhook calls.

    A bare ASGI app, not a framework's: in the system bench it shares the two
    cores with the services and takes a thousand calls a second, and
    Starlette's request objects and middleware were half of its CPU.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, fail_first: int = 0, fail_status: int = 503):
        if port == 0:
            from bounceflow_devkit.stack import free_port

            port = free_port()
        self.host, self.port = host, port
        self.fail_first, self.fail_status = fail_first, fail_status
        self.calls: list[ReceivedCall] = []
        self.failed_calls: list[ReceivedCall] = []
        self._server = HttpServer(self._app, host, port, interface="asgi3",
                                   proxy_headers=False, server_header=False, date_header=False)

    def url(self, path: str = "hook") -> str:
        return f"http://{self.host}:{self.port}/{path}"

    async def _app(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _respond(send, 405)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:  # lower-cased by the server; the first of repeated names
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        call = ReceivedCall(scope["path"], headers, body)
        if len(self.failed_calls) < self.fail_first:
            self.failed_calls.append(call)
            await _respond(send, self.fail_status)
            return
        self.calls.append(call)
        await _respond(send, 204)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    async def wait_for(self, count: int = 1, timeout: float = 30.0, path: str | None = None) -> list[ReceivedCall]:
        """Wait until `count` successful calls (to `path`, if given) arrived; raise on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            calls = [c for c in self.calls if path is None or c.path == path]
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(calls)} of {count} webhook calls after {timeout}s")
            await asyncio.sleep(0.05)


async def _respond(send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
