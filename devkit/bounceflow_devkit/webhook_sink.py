"""A customer's webhook endpoint, for tests, the demo and the benchmark.

Records every POST (headers and body) and answers 2xx, or fails the first
`fail_first` calls with `fail_status` so retry paths can be exercised.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bounceflow.observability import HttpServer


@dataclass
class ReceivedCall:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.time)


class WebhookSink:
    """An HTTP server on loopback that collects webhook calls."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, fail_first: int = 0, fail_status: int = 503):
        if port == 0:
            from bounceflow_devkit.stack import free_port

            port = free_port()
        self.host, self.port = host, port
        self.fail_first, self.fail_status = fail_first, fail_status
        self.calls: list[ReceivedCall] = []
        self.failed_calls: list[ReceivedCall] = []
        app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])
        self._server = HttpServer(app, host, port)

    def url(self, path: str = "hook") -> str:
        return f"http://{self.host}:{self.port}/{path}"

    async def _receive(self, request: Request) -> Response:
        call = ReceivedCall(request.url.path, dict(request.headers), await request.body())
        if len(self.failed_calls) < self.fail_first:
            self.failed_calls.append(call)
            return Response(status_code=self.fail_status)
        self.calls.append(call)
        return Response(status_code=204)

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
