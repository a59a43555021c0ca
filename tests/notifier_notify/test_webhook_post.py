"""`webhooks.post` against a real server on loopback: what counts as delivered, redirects, cookies."""
from __future__ import annotations

import asyncio

from aiohttp import web

from bounceflow_notifier import webhooks


async def _server(handler):
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def test_2xx_is_delivered_3xx_is_not_followed_and_cookies_are_not_kept():
    seen = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("cookie"), await request.read(),
                     request.headers.get("webhook-id")))
        if request.path == "/moved":
            return web.Response(status=302, headers={"Location": "/ok", "Set-Cookie": "s=1; Path=/"})
        return web.Response(status=204, headers={"Set-Cookie": "t=2; Path=/"})

    runner, base = await _server(handler)
    session = webhooks.http_session()
    try:
        headers = {"content-type": webhooks.JSON_TYPE, "webhook-id": "e1:bounce-webhook"}
        moved = await webhooks.post(session, f"{base}/moved", b'{"a":1}', headers, 5.0)
        ok = await webhooks.post(session, f"{base}/ok", b'{"a":2}', headers, 5.0)
        again = await webhooks.post(session, f"{base}/ok", b'{"a":3}', headers, 5.0)
    finally:
        await session.close()
        await runner.cleanup()
    assert (moved.ok, moved.status_code, moved.error) == (False, 302, "HTTP 302")
    assert ok.ok and again.ok
    # The redirect was not followed; no cookie set by an endpoint ever goes back out.
    assert [(path, cookie, body) for path, cookie, body, _ in seen] == [
        ("/moved", None, b'{"a":1}'), ("/ok", None, b'{"a":2}'), ("/ok", None, b'{"a":3}')]
    assert {hook_id for *_, hook_id in seen} == {"e1:bounce-webhook"}


async def test_connection_refused_and_timeout_are_failed_attempts():
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(status=204)

    runner, base = await _server(slow)
    session = webhooks.http_session()
    try:
        timed_out = await webhooks.post(session, f"{base}/slow", b"{}", {}, 0.2)
        refused = await webhooks.post(session, "http://127.0.0.1:9/none", b"{}", {}, 2.0)
    finally:
        await session.close()
        await runner.cleanup()
    assert (timed_out.ok, timed_out.status_code, timed_out.error) == (False, None, "timed out after 0.2 s")
    assert not refused.ok and refused.status_code is None and refused.error.startswith("ClientConnectorError")
