"""The notifier's settings (`BOUNCEFLOW_<KEY>`), on top of the common ones.

One setting picks the ClickHouse store: `chdb://<path>` is the embedded
engine (a relative path is resolved against the working directory at start,
because chDB compares paths literally), `http(s)://user:pass@host:8123/db` is
a ClickHouse server. Same SQL either way.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bounceflow.settings import CommonSettings


class NotifierSettings(CommonSettings):
    """Settings of the notifier: ClickHouse, log batching, read API."""

    clickhouse_dsn: str = Field(
        default="chdb://var/clickhouse",
        description="ClickHouse store: `chdb://<path>` (embedded; relative paths are "
        "resolved against the working directory) or `http(s)://user:pass@host:8123/db`.",
    )
    clickhouse_migrations_dir: str = Field(
        default="",
        description="Directory of the numbered SQL migrations; empty means the repo's "
        "`schemas/clickhouse/`.",
    )
    notifier_http_port: int = Field(
        default=8082, description="Port of the read API, `/health` and `/metrics`."
    )
    log_batch_size: int = Field(
        default=5000, ge=1, description="Insert into ClickHouse once this many records are pending."
    )
    log_batch_delay: float = Field(
        default=0.5, gt=0, description="…or once the oldest pending record waited this many seconds."
    )
    log_retry_initial: float = Field(
        default=0.5, gt=0, description="First wait (s) before retrying a failed ClickHouse insert."
    )
    log_retry_max: float = Field(
        default=30.0, gt=0, description="Longest wait (s) between insert retries (doubling backoff)."
    )
    api_page_default: int = Field(default=100, ge=1, description="Read API page size when none is given.")
    api_page_max: int = Field(default=10000, ge=1, description="Largest page the read API returns.")
    stats_default_days: int = Field(
        default=30, ge=1, description="Period of `/api/stats` when no `from` is given."
    )

    def resolved_clickhouse_dsn(self) -> str:
        """The DSN with a relative chDB path made absolute."""
        return resolve_dsn(self.clickhouse_dsn)

    def migrations_dir(self) -> Path:
        """Where the ClickHouse migrations live."""
        if self.clickhouse_migrations_dir:
            return Path(self.clickhouse_migrations_dir)
        return Path(__file__).resolve().parents[3] / "schemas" / "clickhouse"


def resolve_dsn(dsn: str, cwd: Path | None = None) -> str:
    """`chdb://var/x` -> `chdb:///<cwd>/var/x`; other DSNs unchanged."""
    if not dsn.startswith("chdb://") or dsn.startswith("chdb:///"):
        return dsn
    relative = dsn[len("chdb://"):]
    if relative in ("", "memory", ":memory:"):
        return dsn
    return "chdb://" + str(((cwd or Path.cwd()) / relative).resolve())
