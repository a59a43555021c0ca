"""The notifier's settings (`BOUNCEFLOW_<KEY>`), on top of the common ones.

One setting picks the ClickHouse store: `chdb://<path>` is the embedded
engine (a relative path is resolved against the working directory at start,
because chDB compares paths literally), `http(s)://user:pass@host:8123/db` is
a ClickHouse server. Same SQL either way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from bounceflow.settings import CommonSettings


def _seconds_list(value):
    """`30,120` or `[30, 120]` from the environment; a list as is."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


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
    notifier_log_group: str = Field(
        default="notifier-logs",
        description="Consumer group of the log writer (prefixed); a new name replays the topics "
        "from the beginning, which is harmless: the logs dedupe by event id.",
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

    # --- feedback loops and forwarding (dispatcher.py, webhooks.py, forwarding.py) ---
    notifier_notify_group: str = Field(
        default="notifier-notify",
        description="Consumer group (prefixed) of the notification dispatcher: webhooks and "
        "forwards. Separate from the log writer's, so a slow endpoint never delays logging.",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs that resolve to private, loopback, link-local, multicast "
        "or reserved addresses (SSRF guard). Tests and `make run` turn it on for loopback.",
    )
    webhook_timeout: float = Field(
        default=10.0, gt=0, description="Seconds one webhook POST may take (connect to last byte)."
    )
    notification_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800, 28800],
        description="Seconds before attempt 2, 3, … of a webhook or forward (comma-separated or a "
        "JSON list); after the last one the event is dead-lettered. The default makes 11 attempts "
        "over about 32 hours.",
    )
    notification_retry_jitter: float = Field(
        default=0.2, ge=0, le=1,
        description="Each retry delay is scaled by a random factor in [1-jitter, 1+jitter].",
    )
    notifier_forward_routes: dict[str, str] = Field(
        default_factory=dict,
        description='JSON map domain -> "host:port" for forwarded bounces; "*" matches any domain. '
        "Takes precedence over the smarthost and DNS MX (tests and `make run` point it at a MailSink).",
    )
    notifier_forward_smarthost: str = Field(
        default="", description='"host:port" to hand every forwarded bounce to; empty: DNS MX.'
    )
    notifier_helo_name: str = Field(
        default="localhost", description="EHLO name the notifier uses when it forwards bounces."
    )
    notifier_forward_timeout: float = Field(
        default=60.0, gt=0, description="Seconds one forwarding SMTP transaction may take."
    )
    notifier_host_concurrency: int = Field(
        default=8, ge=1, description="Attempts in flight at once per endpoint host (webhook host or MX)."
    )
    notifier_host_backlog: int = Field(
        default=200, ge=0,
        description="Attempts that may wait for a host that is failing (its last attempt failed) or "
        "behind (an event waited `notifier_host_queue_wait` in its line); beyond that an event goes "
        "straight to `notification-retry`, so a dead endpoint cannot use up the dispatcher. A healthy "
        "host's line is bounded only by `notifier_max_in_flight`.",
    )
    notifier_host_queue_wait: float = Field(
        default=30.0, gt=0,
        description="Seconds an event may wait in one host's line before it goes to "
        "`notification-retry` untried and the host counts as behind; bounds how long a slow but "
        "answering host holds the dispatcher's records (and the records of other hosts behind them).",
    )
    notifier_max_in_flight: int = Field(
        default=1000, ge=1,
        description="Records the dispatcher works on at once (all topics); at this bound it stops "
        "fetching. Also the most one healthy host's line can hold (retries held until due are "
        "bounded by `notifier_retry_max_held` instead).",
    )
    notifier_dispatch_fetch_min_bytes: int = Field(
        default=128 * 1024, ge=1,
        description="The dispatcher's fetches return once this many bytes are waiting (or after "
        "`kafka_fetch_max_wait_ms`, which bounds what this adds to a webhook's latency). Above the "
        "common `kafka_fetch_min_bytes`: a classified bounce carries the whole mail (a few KiB), so "
        "16 KiB meant a fetch every few bounces, and each fetch costs more CPU than the records in it.",
    )
    notifier_retry_max_held: int = Field(
        default=10000, ge=1,
        description="Retry records held in memory until due; beyond that the retry topic is paused.",
    )

    _split_schedule = field_validator("notification_retry_schedule", mode="before")(_seconds_list)

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
