"""The notifier's HTTP read API: the logs and statistics, per account.

`GET /api/bounces`, `GET /api/failures` (filters, pagination, JSON or CSV)
and `GET /api/stats`, next to `/health` and `/metrics`. A caller
authenticates with `Authorization: Bearer <api key>` and sees only its own
account's rows. Queries go through the notifier's single ClickHouse thread
(with chDB the notifier is the only process that may open the data path).

No `from __future__ import annotations` here: FastAPI reads the parameter
annotations at runtime, including aliases local to `create_app`.
"""


import csv
import io
from datetime import date, datetime, timedelta, timezone
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bounceflow.accounts import AccountStore
from bounceflow.observability import HealthChecks, health_routes
from bounceflow_notifier import queries
from bounceflow_notifier.queries import LOG_COLUMNS, LogFilter
from bounceflow_notifier.settings import NotifierSettings
from bounceflow_notifier.store import Store, StoreUnavailable


def create_app(
    settings: NotifierSettings, store: Store, accounts: AccountStore, checks: HealthChecks,
    ready: Callable[[], bool] = lambda: True,
) -> FastAPI:
    """The FastAPI app; `ready()` says whether the schema is in place."""
    app = FastAPI(title="bounceflow notifier read API", version="1")
    bearer = HTTPBearer(auto_error=False)

    def caller(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        account = accounts.authenticate_api_key(credentials.credentials) if credentials else None
        if account is None:
            raise HTTPException(401, "a valid API key is required", headers={"WWW-Authenticate": "Bearer"})
        return account.name

    def log_filter(
        account: Annotated[str, Depends(caller)],
        since: Annotated[datetime | None, Query(alias="from", description="Earliest event time (ISO 8601; UTC if no zone).")] = None,
        until: Annotated[datetime | None, Query(alias="to", description="Events before this time.")] = None,
        recipient: Annotated[str | None, Query(description="Exact recipient address (case-insensitive).")] = None,
        domain: Annotated[str | None, Query(description="Recipient domain.")] = None,
        category: Annotated[str | None, Query(description="e.g. dsn-failure, autoreply, smtp-failure.")] = None,
        bounce_type: Annotated[Literal["hard", "soft"] | None, Query()] = None,
        reason: Annotated[str | None, Query(description="Sisimai reason, e.g. userunknown.")] = None,
        message_id: Annotated[str | None, Query()] = None,
        account_param: Annotated[str | None, Query(alias="account", description="Must be your own account.")] = None,
    ) -> LogFilter:
        if account_param is not None and account_param != account:
            raise HTTPException(403, "an API key reads only its own account")
        return LogFilter(account=account, since=since, until=until, recipient=recipient, domain=domain,
                         category=category, bounce_type=bounce_type, reason=reason, message_id=message_id)

    async def run_query(query: queries.Query) -> list[dict[str, Any]]:
        if not ready():
            raise HTTPException(503, "ClickHouse schema not ready yet")
        try:
            return await store.query(query.sql, query.parameters)
        except StoreUnavailable as exc:
            raise HTTPException(503, f"ClickHouse unavailable: {exc}") from exc

    async def read_log(table: queries.LogTable, f: LogFilter, limit: int, offset: int, fmt: str) -> Response:
        rows = await run_query(queries.select_log(table, f, limit, offset))
        total = (await run_query(queries.count_log(table, f)))[0]["total"]
        items = [{k: plain(v) for k, v in row.items()} for row in rows]
        next_offset = offset + len(items) if offset + len(items) < total else None
        if fmt == "csv":
            headers = {"X-Total-Count": str(total), "Content-Disposition": f'attachment; filename="{table}.csv"'}
            return Response(to_csv(LOG_COLUMNS[table], items), media_type="text/csv; charset=utf-8", headers=headers)
        return JSONResponse({"items": items, "total": total, "limit": limit, "offset": offset, "next_offset": next_offset})

    Limit = Annotated[int, Query(ge=1, le=settings.api_page_max, description="Page size.")]
    Offset = Annotated[int, Query(ge=0, description="Rows to skip (see `next_offset`).")]
    Format = Annotated[Literal["json", "csv"], Query(alias="format")]

    @app.get("/api/bounces", summary="Everything that came back to the envelope address")
    async def bounces(f: Annotated[LogFilter, Depends(log_filter)], limit: Limit = settings.api_page_default,
                      offset: Offset = 0, fmt: Format = "json") -> Response:
        return await read_log("bounce_log", f, limit, offset, fmt)

    @app.get("/api/failures", summary="Refusals at SMTP time and recognised DSN failures")
    async def failures(f: Annotated[LogFilter, Depends(log_filter)], limit: Limit = settings.api_page_default,
                       offset: Offset = 0, fmt: Format = "json") -> Response:
        return await read_log("failure_log", f, limit, offset, fmt)

    @app.get("/api/stats", summary="Counts and rates per day, domain, reason or category")
    async def stats(
        account: Annotated[str, Depends(caller)],
        by: Literal["day", "domain", "reason", "category"] = "day",
        since: Annotated[datetime | None, Query(alias="from")] = None,
        until: Annotated[datetime | None, Query(alias="to")] = None,
        days: Annotated[int | None, Query(ge=1, le=3660, description="Period ending now, when `from` is not given.")] = None,
        domain: str | None = None,
    ) -> dict[str, Any]:
        until = until or datetime.now(timezone.utc)
        since = since or until - timedelta(days=days or settings.stats_default_days)
        f = LogFilter(account=account, since=since, until=until, domain=domain)
        totals_results = {name: await run_query(q) for name, q in queries.stats_queries("total", f).items()}
        totals = (queries.merge_stats("total", totals_results, 0) or [queries.empty_stats("all")])[0]
        period_messages = totals["messages"]
        results = {name: await run_query(q) for name, q in queries.stats_queries(by, f).items()}
        return {
            "account": account, "by": by, "from": plain(since), "to": plain(until),
            "rows": queries.merge_stats(by, results, period_messages),
            "totals": totals,
        }

    app.router.routes.extend(health_routes("notifier", checks))
    return app


def plain(value: Any) -> Any:
    """JSON/CSV-friendly value: datetimes as ISO 8601 UTC (`Z`)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)  # the columns are DateTime64(3, 'UTC')
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_csv(columns: tuple[str, ...], items: list[dict[str, Any]]) -> str:
    """CSV with a header row; None becomes an empty field."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for item in items:
        writer.writerow({k: ("" if v is None else v) for k, v in item.items()})
    return buffer.getvalue()
