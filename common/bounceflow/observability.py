"""`/health` and `/metrics` for every service.

Services with an HTTP API mount `health_routes()` into their app; the others
run `serve_http(...)` next to their main loop. Health is a set of named
checks (callables returning True when fine), so a service says exactly what
is wrong: `{"status": "fail", "checks": {"kafka": false}}` with HTTP 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HealthChecks = Mapping[str, Callable[[], bool]]


def health_routes(service: str, checks: HealthChecks) -> list[Route]:
    """Starlette routes for `/health` and `/metrics`."""

    async def health(_: Request) -> JSONResponse:
        results = {}
        for name, check in checks.items():
            try:
                results[name] = bool(check())
            except Exception:
                results[name] = False
        ok = all(results.values())
        return JSONResponse(
            {"service": service, "status": "ok" if ok else "fail", "checks": results},
            status_code=200 if ok else 503,
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/health", health), Route("/metrics", metrics)]


def health_app(service: str, checks: HealthChecks) -> Starlette:
    """A bare app with only `/health` and `/metrics`."""
    return Starlette(routes=health_routes(service, checks))


class HttpServer:
    """Runs an ASGI app with uvicorn inside the service's own event loop."""

    def __init__(self, app, host: str, port: int, **options) -> None:
        """`options`: more uvicorn.Config settings."""
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off", **options)
        self._server = uvicorn.Server(config)
        # The service owns SIGTERM/SIGINT: uvicorn must not take them over (it would
        # stop the HTTP side first and swallow the signal the service waits for).
        self._server.capture_signals = contextlib.nullcontext
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Start serving; returns once the socket listens."""
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise why it could not start (e.g. port in use)
            await asyncio.sleep(0.01)

    @property
    def stopping(self) -> bool:
        """True once the server was told to exit."""
        return self._server.should_exit

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
