"""Typed settings of the sender (`BOUNCEFLOW_SENDER_*`), built once in `__main__`.

Every key has a description and a default. The smarthost URL carries a
password, so it is a SecretStr and never appears in logs or reprs.
"""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from bounceflow.settings import CommonSettings


class Smarthost(BaseModel):
    """Where all mail goes when a smarthost is configured (STARTTLS, then AUTH)."""

    host: str
    port: int
    username: str | None = None
    password: SecretStr | None = None


def parse_smarthost(url: str) -> Smarthost:
    """Parse `smtp://user:pass@host:port`; raises ValueError on anything else."""
    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise ValueError("smarthost must look like smtp://user:pass@host:port")
    try:
        port = parts.port or 587
    except ValueError as exc:
        raise ValueError("smarthost port is not a number") from exc
    username = unquote(parts.username) if parts.username else None
    password = SecretStr(unquote(parts.password)) if parts.password else None
    return Smarthost(host=parts.hostname, port=port, username=username, password=password)


def _seconds_list(value):
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class SenderSettings(CommonSettings):
    """Settings of the sender service."""

    sender_http_port: int = Field(default=8081, description="Port of /health and /metrics.")
    sender_helo_name: str = Field(
        default="localhost", description="Name the sender gives in EHLO/HELO (use the host's FQDN)."
    )
    sender_smarthost: SecretStr | None = Field(
        default=None,
        description="Relay everything through `smtp://user:pass@host:port` (STARTTLS required "
        "before AUTH). Empty: deliver directly to each domain's MX.",
    )
    sender_static_routes: dict[str, str] = Field(
        default_factory=dict,
        description='JSON map domain -> "host:port"; "*" matches any domain. Used by tests, '
        "`make run` and the demo to point delivery at loopback MX simulators. Takes precedence "
        "over the smarthost and DNS.",
    )
    sender_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [60, 300, 900, 3600, 14400],
        description="Seconds to wait before attempt 2, 3, …; the last value repeats. "
        "Comma-separated or a JSON list.",
    )
    sender_max_age: float = Field(
        default=4 * 24 * 3600,
        description="Seconds after the first attempt when a still deferred message fails as `expired`.",
    )
    sender_retry_hold_max: float = Field(
        default=60.0,
        description="A retry record due later than this many seconds is re-queued at the tail "
        "of `outgoing-retry` instead of holding its partition.",
    )
    sender_concurrency: int = Field(
        default=256, description="Deliveries in flight at once, per consumed topic."
    )
    sender_destination_concurrency: int = Field(
        default=16, description="Connections at once to one destination host:port."
    )
    sender_connection_max_messages: int = Field(
        default=1000, description="Messages sent over one SMTP connection before it is closed."
    )
    sender_connection_idle: float = Field(
        default=10.0, description="Seconds an idle SMTP connection is kept for reuse."
    )
    sender_connect_timeout: float = Field(default=30.0, description="Seconds to open a TCP connection.")
    sender_command_timeout: float = Field(
        default=120.0, description="Seconds to wait for any SMTP reply (greeting, commands, end of data)."
    )
    sender_starttls: bool = Field(
        default=True, description="Use STARTTLS when the next hop offers it (opportunistic)."
    )
    sender_tls_verify: bool = Field(
        default=False,
        description="Verify the next hop's certificate in opportunistic STARTTLS. Off (as most MTAs "
        "do): encrypt without authenticating; a failed handshake falls back to plain text. On: a "
        "failed verification defers the message.",
    )
    sender_tls_ca_file: str | None = Field(
        default=None, description="Extra CA bundle for verifying next hops and the smarthost."
    )
    sender_smarthost_tls_verify: bool = Field(
        default=True, description="Verify the smarthost's certificate (it receives our password)."
    )
    sender_shutdown_grace: float = Field(
        default=30.0, description="Seconds stop() waits for deliveries in flight before abandoning them."
    )
    sender_dns_timeout: float = Field(default=10.0, description="Seconds for one MX/A/AAAA lookup.")

    _split = field_validator("sender_retry_schedule", mode="before")(_seconds_list)

    @field_validator("sender_retry_schedule")
    @classmethod
    def _schedule_not_empty(cls, value: list[float]) -> list[float]:
        if not value or any(v < 0 for v in value):
            raise ValueError("retry schedule needs at least one non-negative number of seconds")
        return value

    @field_validator("sender_static_routes")
    @classmethod
    def _routes_have_ports(cls, value: dict[str, str]) -> dict[str, str]:
        for domain, target in value.items():
            host, sep, port = target.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"static route for {domain!r} must be host:port, got {target!r}")
        return value

    @field_validator("sender_smarthost")
    @classmethod
    def _smarthost_parses(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            parse_smarthost(value.get_secret_value())
        return value

    def smarthost(self) -> Smarthost | None:
        """The parsed smarthost, or None when delivering directly."""
        if self.sender_smarthost is None or not self.sender_smarthost.get_secret_value():
            return None
        return parse_smarthost(self.sender_smarthost.get_secret_value())
