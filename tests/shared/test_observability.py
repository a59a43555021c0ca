"""/health and /metrics, and that the HTTP server leaves signals to the service."""

import asyncio
import os
import signal

import httpx
from prometheus_client import Counter

from bounceflow.observability import HttpServer, health_app
from bounceflow_devkit.stack import free_port

PROBE = Counter("bounceflow_test_probe_total", "A counter the test increments.")


async def test_health_reports_each_check_and_metrics_are_served():
    state = {"kafka": True}
    port = free_port()
    server = HttpServer(health_app("test", {"kafka": lambda: state["kafka"], "broken": lambda: 1 / 0 or True}), "127.0.0.1", port)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            response = await client.get("/health")
            assert response.status_code == 503
            assert response.json()["checks"] == {"kafka": True, "broken": False}
            PROBE.inc()
            metrics = (await client.get("/metrics")).text
            assert "bounceflow_test_probe_total 1.0" in metrics
    finally:
        await server.stop()


async def test_sigterm_reaches_the_service_not_uvicorn():
    # The service installs its handler first, then starts its HTTP side.
    got_signal = asyncio.Event()
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    loop.add_signal_handler(signal.SIGTERM, got_signal.set)
    port = free_port()
    server = HttpServer(health_app("test", {}), "127.0.0.1", port)
    await server.start()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(got_signal.wait(), 5)
        # The HTTP side is still serving: only the service decides when to stop.
        assert not server.stopping
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)
        await server.stop()
