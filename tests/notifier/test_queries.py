"""The read API's SQL and stats arithmetic, without a database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bounceflow_notifier.queries import LogFilter, merge_stats, select_log, stats_queries, where_clause
from bounceflow_notifier.settings import resolve_dsn


def test_values_are_bound_never_spliced():
    f = LogFilter(account="acme'; DROP TABLE x --", recipient="A@B.test", reason="userunknown")
    q = select_log("failure_log", f, 10, 20)
    assert "DROP" not in q.sql and q.parameters["account"] == f.account
    assert q.parameters["recipient"] == "a@b.test" and q.parameters["limit"] == 10 and q.parameters["offset"] == 20
    assert "FINAL" in q.sql and "account = {account:String}" in q.sql


def test_times_are_sent_as_utc():
    amsterdam = timezone(timedelta(hours=1))
    q = where_clause(LogFilter(account="a", since=datetime(2025, 3, 10, 13, 0, tzinfo=amsterdam)))
    assert q.parameters["since"] == datetime(2025, 3, 10, 12, 0)


def test_delivery_side_only_for_dimensions_it_has():
    f = LogFilter(account="a")
    assert set(stats_queries("domain", f)) == {"failures", "bounces", "deliveries"}
    assert set(stats_queries("reason", f)) == {"failures", "bounces"}


def test_merge_stats_rates():
    results = {
        "deliveries": [{"key": "x.test", "messages": 10, "delivered": 8, "deferred": 1, "failed": 2}],
        "failures": [{"key": "x.test", "failures": 2, "hard": 2, "soft": 0},
                     {"key": "y.test", "failures": 1, "hard": 0, "soft": 1}],
        "bounces": [{"key": "x.test", "bounces": 1, "autoreplies": 1, "complaints": 0}],
    }
    rows = {r["key"]: r for r in merge_stats("domain", results, 10)}
    assert rows["x.test"]["delivery_rate"] == 0.8 and rows["x.test"]["failure_rate"] == 0.2
    assert rows["y.test"]["messages"] == 0 and rows["y.test"]["failure_rate"] is None
    by_reason = merge_stats("reason", {"failures": [{"key": "userunknown", "failures": 3, "hard": 3, "soft": 0}]}, 12)
    assert by_reason[0]["failure_rate"] == 0.25 and by_reason[0]["delivery_rate"] is None


def test_relative_chdb_path_is_made_absolute(tmp_path):
    assert resolve_dsn("chdb://var/clickhouse", tmp_path) == f"chdb://{tmp_path}/var/clickhouse"
    assert resolve_dsn("chdb:///abs/path") == "chdb:///abs/path"
    assert resolve_dsn("http://u:p@host:8123/db") == "http://u:p@host:8123/db"
