"""REST injection: the seed bodies and the refusals, against a real broker."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from bounceflow.models import MESSAGE_ID_HEADER, DsnRequest
from ingress.ingress_harness import parsed_mime

SEED_MIME = "From: info@example.com\r\nTo: info@example.com\r\nSubject: seed\r\n\r\nThis is example content.\r\n"

# The JSON bodies of the seeds; "..." (the seeds' placeholder for a MIME message) replaced by one.
SEED_BODIES = {
    "tracking-disabled": {
        "envelope": "info@example.com", "recipient": "recipient@example.com", "from": "info@example.com",
        "to": "recipient@example.com", "html": "This is example content.",
    },
    "tracking-enabled-bounce-property": {
        "envelope": "info@example.com", "recipient": "recipient@example.com", "from": "info@example.com",
        "bounce": "bounce@example.com", "to": "recipient@example.com", "html": "This is example content.",
    },
    "dsn-all-four": {
        "envelope": "bounce@yourdomain.com", "recipient": "info@example.com", "mime": SEED_MIME,
        "dsn": {"notify": "FAILURE", "ret": "HDRS", "envid": "unique-identifier", "orcpt": "info@example.com"},
    },
    "notify-never": {
        "envelope": "bounce@yourdomain.com", "recipient": "info@example.com", "mime": SEED_MIME,
        "trackbounces": True, "dsn": {"notify": "NEVER"},
    },
    "no-envelope": {"recipient": "info@example.com", "mime": SEED_MIME, "trackbounces": True},
    "notify-failure": {
        "envelope": "bounce@yourdomain.com", "recipient": "info@example.com", "mime": SEED_MIME,
        "trackbounces": True, "dsn": {"notify": "FAILURE"},
    },
}

EXPECTED = {
    "tracking-disabled": ("info@example.com", "recipient@example.com", DsnRequest()),
    "tracking-enabled-bounce-property": ("info@example.com", "recipient@example.com", DsnRequest()),
    "dsn-all-four": ("bounce@yourdomain.com", "info@example.com",
                     DsnRequest(notify=["FAILURE"], ret="HDRS", envid="unique-identifier",
                                orcpt="rfc822;info@example.com")),
    "notify-never": ("bounce@yourdomain.com", "info@example.com", DsnRequest(notify=["NEVER"])),
    "no-envelope": ("", "info@example.com", DsnRequest()),
    "notify-failure": ("bounce@yourdomain.com", "info@example.com", DsnRequest(notify=["FAILURE"])),
}


async def post(ingress, body, api_key: str | None):
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    headers["Content-Type"] = "application/json"
    async with httpx.AsyncClient(base_url=ingress.url, timeout=30) as client:
        # json.dumps escapes lone surrogates (\ud800), as a hostile client could send them
        return await client.post("/v1/send", content=json.dumps(body), headers=headers)


@pytest.mark.parametrize("name", list(SEED_BODIES))
async def test_seed_bodies(ingress, logins, name):
    response = await post(ingress, SEED_BODIES[name], logins["acme"].api_key)
    assert response.status_code == 200, response.text
    [accepted] = response.json()["messages"]

    [record] = await ingress.records()
    envelope, recipient, dsn = EXPECTED[name]
    assert accepted == {"recipient": recipient, "message_id": record.message_id}
    assert (record.account, record.source) == ("acme", "rest")
    assert (record.envelope_from, record.recipient, record.dsn) == (envelope, recipient, dsn)
    assert record.track_bounces is True, "trackbounces defaults to true"
    mime = parsed_mime(record)
    assert mime[MESSAGE_ID_HEADER] == record.message_id
    assert mime["Message-ID"]
    if "mime" in SEED_BODIES[name]:
        assert base64.b64decode(record.mime_b64).endswith(SEED_MIME.encode())
    else:
        assert mime["From"] == "info@example.com" and mime["To"] == "recipient@example.com"
        assert mime.get_content_type() == "text/html"
        assert "This is example content." in mime.get_payload(decode=True).decode()


async def test_trackbounces_false_and_composed_alternative(ingress, logins):
    body = {"envelope": "info@example.com", "recipients": ["a@example.net", "b@example.net"],
            "from": "Info <info@example.com>", "subject": "Hallo wereld", "text": "plain", "html": "<p>html</p>",
            "trackbounces": False, "dsn": {"notify": ["SUCCESS", "FAILURE"], "ret": "full"}}
    response = await post(ingress, body, logins["acme"].api_key)
    assert response.status_code == 200, response.text
    ids = {m["recipient"]: m["message_id"] for m in response.json()["messages"]}
    records = await ingress.records()
    assert {r.recipient: r.message_id for r in records} == ids
    for record in records:
        assert record.track_bounces is False
        assert record.dsn == DsnRequest(notify=["SUCCESS", "FAILURE"], ret="FULL")
        mime = parsed_mime(record)
        assert mime.get_content_type() == "multipart/alternative"
        assert mime["Subject"] == "Hallo wereld"
        assert mime["To"] == "undisclosed-recipients:;", "recipients do not see each other"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipient": "not-an-address", "from": "info@example.com", "text": "x"}, "recipient"),
        ({"envelope": "bad@", "recipient": "r@example.net", "from": "info@example.com", "text": "x"}, "envelope"),
        ({"recipient": "r@example.net", "from": "info@example.com", "text": "x", "dsn": {"notify": "SOMETIMES"}}, "dsn"),
        ({"recipient": "r@example.net", "from": "info@example.com", "text": "x", "dsn": {"ret": "PART"}}, "dsn"),
        ({"recipient": "r@example.net", "mime": SEED_MIME, "html": "<p>x</p>"}, "html"),
        ({"recipient": "r@example.net", "from": "info@example.com"}, "html"),
        ({"recipient": "r@example.net", "text": "x"}, "from"),
        ({"from": "info@example.com", "text": "x"}, "recipient"),
        ({"recipient": "a@example.net", "recipients": ["b@example.net"], "mime": SEED_MIME}, "recipients"),
        ({"recipients": ["a@example.net", "b@example.net"], "mime": SEED_MIME, "dsn": {"orcpt": "a@example.net"}},
         "dsn.orcpt"),
        ({"recipient": "r@example.net", "mime": SEED_MIME, "trackbounces": "yes"}, "trackbounces"),
        ({"recipient": "r@example.net", "mime": SEED_MIME, "recipent": "typo@example.net"}, "recipent"),
        ({"recipient": "r@example.net", "mime": "Subject: no from\r\n\r\nx\r\n"}, "mime"),
        ({"recipient": "r@example.net", "from": "info@example.com", "text": "x", "subject": "a\r\nBcc: x@example.net"},
         "subject"),
        ({"recipient": "r@example.net", "from": "info@example.com", "text": "\ud800"}, "text"),
        ({"recipient": "r@example.net", "mime": "From: info@example.com\r\n\r\n\udc80"}, "mime"),
    ],
)
async def test_bad_bodies_are_422_with_the_field(ingress, logins, body, field):
    response = await post(ingress, body, logins["acme"].api_key)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "invalid_request"
    assert field in [f["field"] for f in error["fields"]], error
    assert await ingress.records() == []


async def test_oversize_message_is_422(start_ingress, logins):
    ingress = await start_ingress(ingress_max_message_size=2000)
    body = {"recipient": "r@example.net", "mime": SEED_MIME + "x" * 2000 + "\r\n"}
    response = await post(ingress, body, logins["acme"].api_key)
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "mime"
    huge = {"recipient": "r@example.net", "mime": "x" * 80_000}  # beyond 2 x max + 64 KiB: refused before parsing
    assert (await post(ingress, huge, logins["acme"].api_key)).status_code == 413
    assert await ingress.records() == []


async def test_missing_or_wrong_api_key_is_401_before_validation(ingress):
    for key in (None, "bf_wrong"):
        response = await post(ingress, {"nonsense": True}, key)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_wrong_api_keys_are_rate_limited(start_ingress, logins):
    ingress = await start_ingress(ingress_auth_max_failures=2)
    for _ in range(2):
        assert (await post(ingress, SEED_BODIES["no-envelope"], "bf_guess")).status_code == 401
    response = await post(ingress, SEED_BODIES["no-envelope"], logins["acme"].api_key)
    assert response.status_code == 429 and response.json()["error"] == "rate_limited"


async def test_sender_not_allowed_is_403(ingress, logins):
    body = dict(SEED_BODIES["tracking-disabled"])
    response = await post(ingress, body, logins["restricted"].api_key)
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "message": "this API key may not send as info@example.com"}
    assert await ingress.records() == []


async def test_health_and_metrics(ingress, logins):
    await post(ingress, SEED_BODIES["no-envelope"], logins["acme"].api_key)
    async with httpx.AsyncClient(base_url=ingress.url) as client:
        health = await client.get("/health")
        metrics = await client.get("/metrics")
    assert health.status_code == 200 and health.json()["checks"] == {"kafka": True, "smtp": True}
    text = metrics.text
    assert 'bounceflow_ingress_accepted_messages_total{interface="rest"}' in text
    assert 'bounceflow_ingress_rejected_total{interface="rest",reason=' in text or "bounceflow_ingress_rejected" in text
    assert 'bounceflow_ingress_publish_seconds_bucket{interface="rest"' in text
