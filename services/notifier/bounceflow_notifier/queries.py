"""The read API's SQL, built by pure functions (tested without a database).

Every query is scoped to one account and reads with FINAL, so a replayed
record is counted once even before ClickHouse merged its copy away. Values
are always bound parameters (`{name:Type}`), never spliced into the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from bounceflow_notifier.rows import BOUNCE_COLUMNS, FAILURE_COLUMNS

LogTable = Literal["bounce_log", "failure_log"]
Dimension = Literal["day", "domain", "reason", "category"]

LOG_COLUMNS: dict[str, tuple[str, ...]] = {"bounce_log": BOUNCE_COLUMNS, "failure_log": FAILURE_COLUMNS}

# Dimensions that exist in delivery_log: rates per group use that group's messages.
_DELIVERY_DIMENSIONS = {"day": "toDate(event_time)", "domain": "recipient_domain"}
_LOG_DIMENSIONS = {
    "day": "toDate(event_time)", "domain": "recipient_domain", "reason": "reason", "category": "category",
}


@dataclass(frozen=True)
class LogFilter:
    """What a reader asked for; `account` is always the caller's own."""

    account: str
    since: datetime | None = None
    until: datetime | None = None
    recipient: str | None = None
    domain: str | None = None
    category: str | None = None
    bounce_type: str | None = None
    reason: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class Query:
    sql: str
    parameters: dict[str, Any] = field(default_factory=dict)


def utc_naive(moment: datetime) -> datetime:
    """UTC wall time without tzinfo, how the parameter is sent to a DateTime64(3, 'UTC')."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def where_clause(f: LogFilter) -> Query:
    """`WHERE …` for a filter, with its parameters."""
    conditions = ["account = {account:String}"]
    params: dict[str, Any] = {"account": f.account}
    if f.since is not None:
        conditions.append("event_time >= {since:DateTime64(3, 'UTC')}")
        params["since"] = utc_naive(f.since)
    if f.until is not None:
        conditions.append("event_time < {until:DateTime64(3, 'UTC')}")
        params["until"] = utc_naive(f.until)
    if f.recipient:
        conditions.append("lower(recipient) = {recipient:String}")
        params["recipient"] = f.recipient.lower()
    if f.domain:
        conditions.append("recipient_domain = {domain:String}")
        params["domain"] = f.domain.lower()
    for name in ("category", "bounce_type", "reason", "message_id"):
        value = getattr(f, name)
        if value:
            conditions.append(f"{name} = {{{name}:String}}")
            params[name] = value
    return Query("WHERE " + " AND ".join(conditions), params)


def select_log(table: LogTable, f: LogFilter, limit: int, offset: int) -> Query:
    """One page of a log, newest first, in a stable order."""
    where = where_clause(f)
    columns = ", ".join(LOG_COLUMNS[table])
    sql = (
        f"SELECT {columns} FROM {table} FINAL {where.sql} "
        "ORDER BY event_time DESC, event_id DESC LIMIT {limit:UInt32} OFFSET {offset:UInt64}"
    )
    return Query(sql, {**where.parameters, "limit": limit, "offset": offset})


def count_log(table: LogTable, f: LogFilter) -> Query:
    """How many rows match the filter (for `total`)."""
    where = where_clause(f)
    return Query(f"SELECT count() AS total FROM {table} FINAL {where.sql}", where.parameters)


def stats_queries(dimension: Dimension | Literal["total"], f: LogFilter) -> dict[str, Query]:
    """The grouped counts behind /api/stats: one query per log."""
    where = where_clause(f)
    log_key = "'all'" if dimension == "total" else _LOG_DIMENSIONS[dimension]
    queries = {
        "failures": Query(
            f"SELECT toString({log_key}) AS key, count() AS failures, "
            "countIf(bounce_type = 'hard') AS hard, countIf(bounce_type = 'soft') AS soft "
            f"FROM failure_log FINAL {where.sql} GROUP BY key",
            where.parameters,
        ),
        "bounces": Query(
            f"SELECT toString({log_key}) AS key, count() AS bounces, "
            "countIf(category = 'autoreply') AS autoreplies, countIf(category = 'complaint') AS complaints "
            f"FROM bounce_log FINAL {where.sql} GROUP BY key",
            where.parameters,
        ),
    }
    delivery_key = "'all'" if dimension == "total" else _DELIVERY_DIMENSIONS.get(dimension)
    if delivery_key is not None:
        delivery_where = where_clause(LogFilter(
            account=f.account, since=f.since, until=f.until, recipient=f.recipient, domain=f.domain,
        ))
        queries["deliveries"] = Query(
            f"SELECT toString({delivery_key}) AS key, uniqExact(message_id) AS messages, "
            "countIf(outcome = 'delivered') AS delivered, countIf(outcome = 'deferred') AS deferred, "
            "countIf(outcome = 'failed') AS failed "
            f"FROM delivery_log FINAL {delivery_where.sql} GROUP BY key",
            delivery_where.parameters,
        )
    return queries


STAT_FIELDS = ("messages", "delivered", "deferred", "failed", "failures", "hard", "soft",
               "bounces", "autoreplies", "complaints")


def merge_stats(
    dimension: Dimension | Literal["total"], results: dict[str, list[dict[str, Any]]], period_messages: int
) -> list[dict[str, Any]]:
    """One row per key with counts and rates.

    Rates divide by the messages of the same group when the dimension exists
    in delivery_log (day, domain), otherwise by all messages of the period.
    """
    merged: dict[str, dict[str, Any]] = {}
    for rows in results.values():
        for row in rows:
            entry = merged.setdefault(str(row["key"]), {"key": str(row["key"]), **dict.fromkeys(STAT_FIELDS, 0)})
            for name, value in row.items():
                if name != "key":
                    entry[name] += int(value)
    per_group = dimension in _DELIVERY_DIMENSIONS or dimension == "total"
    for entry in merged.values():
        denominator = entry["messages"] if per_group else period_messages
        entry["delivery_rate"] = _rate(entry["delivered"], entry["messages"]) if per_group else None
        entry["failure_rate"] = _rate(entry["failures"], denominator)
        entry["bounce_rate"] = _rate(entry["bounces"], denominator)
    if dimension == "day":
        return sorted(merged.values(), key=lambda e: e["key"])
    return sorted(merged.values(), key=lambda e: (-(e["failures"] + e["bounces"] + e["messages"]), e["key"]))


def empty_stats(key: str) -> dict[str, Any]:
    """A stats row with nothing in it."""
    return {"key": key, **dict.fromkeys(STAT_FIELDS, 0), "delivery_rate": None, "failure_rate": None,
            "bounce_rate": None}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
