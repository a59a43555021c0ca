"""The read API and `bounceflow stats` against a running notifier (broker + chDB)."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from notifier.notifier_harness import API_KEYS, notifier_settings, produce, run_until_logged
from notifier.notifier_records import T0, bounce, deferred, delivery, expired, refused

from bounceflow_notifier import stats_cli

RECORDS = [
    *[refused(f"m-gm-{i}", recipient=f"u{i}@gmail.test", minutes=i) for i in range(7)],
    *[delivery(f"m-ok-{i}", recipient=f"ok{i}@corp.test", minutes=i) for i in range(10)],
    expired("m-exp", recipient="late@corp.test", minutes=30),
    deferred("m-exp", recipient="late@corp.test", minutes=20),
    delivery("m-b1", recipient="b1@corp.test"),
    bounce("b-1", "dsn-failure", "m-b1", recipient="b1@corp.test", minutes=40),
    delivery("m-b2", recipient="b2@gmail.test"),
    bounce("b-2", "autoreply", "m-b2", recipient="b2@gmail.test", minutes=41),
    bounce("b-3", "nonstandard-bounce", "m-b2", recipient="b2@gmail.test", minutes=60 * 24 + 5),
    refused("m-globex", account="globex", recipient="x@gmail.test"),
    bounce("b-globex", "dsn-failure", "m-globex", account="globex", recipient="x@gmail.test"),
]
# acme: failures = 7 refusals + expired + DSN b-1 = 9; bounces = 3; messages = 7 + 10 + 1 + 2 = 20


@pytest.fixture
async def notifier(kafka_broker, topic_prefix, tmp_path):
    settings = notifier_settings(kafka_broker.bootstrap, topic_prefix, tmp_path, api_page_max=50)
    await produce(settings, RECORDS)
    service = await run_until_logged(settings, {"delivery_log": 22, "failure_log": 11, "bounce_log": 4})
    try:
        yield service
    finally:
        await service.stop()


def client(service, account: str | None = "acme") -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {API_KEYS[account]}"} if account else {}
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.settings.notifier_http_port}", headers=headers)


async def test_api_key_is_required(notifier):
    async with client(notifier, None) as http:
        for path in ("/api/bounces", "/api/failures", "/api/stats"):
            assert (await http.get(path)).status_code == 401
        bad = await http.get("/api/failures", headers={"Authorization": "Bearer not-a-key"})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/health")).json()["status"] == "ok"
        assert "bounceflow_notifier_rows_written_total" in (await http.get("/metrics")).text


async def test_an_account_sees_only_its_own_rows(notifier):
    async with client(notifier, "globex") as http:
        failures = (await http.get("/api/failures")).json()
        assert failures["total"] == 2 and {i["account"] for i in failures["items"]} == {"globex"}
        assert (await http.get("/api/bounces")).json()["total"] == 1
        assert (await http.get("/api/failures", params={"account": "acme"})).status_code == 403
    async with client(notifier) as http:
        failures = (await http.get("/api/failures", params={"limit": 50})).json()
        assert failures["total"] == 9 and "m-globex" not in {i["message_id"] for i in failures["items"]}


async def test_failure_filters(notifier):
    async with client(notifier) as http:
        async def total(**params) -> int:
            response = await http.get("/api/failures", params=params)
            assert response.status_code == 200, response.text
            return response.json()["total"]

        assert await total(domain="gmail.test") == 7
        assert await total(domain="corp.test") == 2
        assert await total(category="dsn-failure") == 1
        assert await total(reason="expired") == 1
        assert await total(bounce_type="hard") == 8 and await total(bounce_type="soft") == 1
        assert await total(recipient="U3@gmail.test") == 1
        assert await total(**{"from": "2025-03-10T12:02:00Z", "to": "2025-03-10T12:05:00+00:00"}) == 3
        assert await total(**{"from": "2025-03-10T13:02:00+01:00", "to": "2025-03-10T12:05:00"}) == 3
        assert (await http.get("/api/failures", params={"bounce_type": "medium"})).status_code == 422


async def test_bounce_log_items(notifier):
    async with client(notifier) as http:
        body = (await http.get("/api/bounces")).json()
        assert [i["event_id"] for i in body["items"]] == ["b-3", "b-2", "b-1"]  # newest first
        first = body["items"][2]
        assert first["category"] == "dsn-failure" and first["reason"] == "userunknown"
        assert first["event_time"] == "2025-03-10T12:40:00.000Z"
        assert (await http.get("/api/bounces", params={"category": "autoreply"})).json()["total"] == 1


async def test_pagination_walks_every_row_once(notifier):
    async with client(notifier) as http:
        seen, offset = [], 0
        while offset is not None:
            page = (await http.get("/api/failures", params={"limit": 4, "offset": offset})).json()
            assert len(page["items"]) <= 4
            seen += [i["event_id"] for i in page["items"]]
            offset = page["next_offset"]
        assert len(seen) == len(set(seen)) == 9
        assert (await http.get("/api/failures", params={"limit": 51})).status_code == 422  # api_page_max


async def test_csv(notifier):
    async with client(notifier) as http:
        response = await http.get("/api/failures", params={"format": "csv", "domain": "corp.test"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert response.headers["x-total-count"] == "2"
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert sorted(r["event_id"] for r in rows) == ["b-1", "m-exp:7"]
        assert {r["smtp_code"] for r in rows} == {"550", "451"}


async def test_stats_per_domain_and_day(notifier):
    async with client(notifier) as http:
        stats = (await http.get("/api/stats", params={"by": "domain", "from": T0.isoformat(), "days": 30,
                                                       "to": "2025-03-20T00:00:00Z"})).json()
        rows = {r["key"]: r for r in stats["rows"]}
        assert rows["gmail.test"]["messages"] == 8 and rows["gmail.test"]["failures"] == 7
        assert rows["gmail.test"]["bounces"] == 2 and rows["gmail.test"]["delivered"] == 1
        assert rows["corp.test"]["delivery_rate"] == round(11 / 12, 4)
        assert stats["totals"]["messages"] == 20 and stats["totals"]["failures"] == 9
        by_day = (await http.get("/api/stats", params={"by": "day", "from": "2025-03-01T00:00:00Z",
                                                        "to": "2025-03-20T00:00:00Z"})).json()
        assert [r["key"] for r in by_day["rows"]] == ["2025-03-10", "2025-03-11"]
        assert by_day["rows"][1]["bounces"] == 1 and by_day["rows"][1]["messages"] == 0


async def test_stats_per_reason_uses_period_denominator(notifier):
    async with client(notifier) as http:
        stats = (await http.get("/api/stats", params={"by": "reason", "from": "2025-03-01T00:00:00Z",
                                                       "to": "2025-03-20T00:00:00Z"})).json()
        rows = {r["key"]: r for r in stats["rows"]}
        assert rows["userunknown"]["failures"] == 8 and rows["userunknown"]["failure_rate"] == 0.4
        assert rows["expired"]["failures"] == 1


def test_stats_table_rendering():
    stats = {"account": "acme", "by": "domain", "from": "2025-03-01T00:00:00.000Z", "to": "2025-03-31T00:00:00.000Z",
             "rows": [{"key": "gmail.test", "messages": 1200, "delivered": 1100, "failures": 90, "hard": 80,
                       "soft": 10, "bounces": 12, "delivery_rate": 0.9167, "failure_rate": 0.075,
                       "bounce_rate": 0.01}],
             "totals": {"key": "all", "messages": 1200, "delivered": 1100, "failures": 90, "hard": 80, "soft": 10,
                        "bounces": 12, "delivery_rate": 0.9167, "failure_rate": 0.075, "bounce_rate": None}}
    text = stats_cli.render_table(stats)
    lines = text.splitlines()
    assert lines[0] == "account acme: 2025-03-01 .. 2025-03-31, by domain"
    assert lines[2].split() == ["domain", "msgs", "delivered", "failures", "hard", "soft", "bounces",
                                "delivered%", "failed%", "bounced%"]
    assert lines[4].split() == ["gmail.test", "1,200", "1,100", "90", "80", "10", "12", "91.7%", "7.5%", "1.0%"]
    assert lines[-1].split()[0] == "total" and lines[-1].split()[-1] == "-"


async def test_stats_cli_prints_a_table_from_the_api(notifier, tmp_path):
    url = f"http://127.0.0.1:{notifier.settings.notifier_http_port}"
    credentials = tmp_path / "dev-credentials.json"
    credentials.write_text('{"api_key": "%s"}' % API_KEYS["acme"])
    out = io.StringIO()
    # main() is sync (it is a CLI); run it off the loop so the in-process server can answer
    import asyncio
    code = await asyncio.to_thread(stats_cli.main, ["--url", url, "--credentials", str(credentials),
                                                    "--by", "reason", "--days", "3650"], out)
    assert code == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("account acme:") and lines[2].split()[0] == "reason"
    body = {line.split()[0]: line.split() for line in lines[4:-2]}
    assert body["userunknown"][3] == "8" and body["expired"][3] == "1"
    assert lines[-1].split()[:4] == ["total", "20", "12", "9"]
    err = await asyncio.to_thread(stats_cli.main, ["--url", url, "--api-key", "wrong"], io.StringIO())
    assert err == 1
