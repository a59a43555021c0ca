"""Settings of the bounce-receiver (`BOUNCEFLOW_RECEIVER_*` and the common keys)."""

from __future__ import annotations

import socket
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from bounceflow.settings import CommonSettings

MIB = 1024 * 1024


def _split_list(value):
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class ReceiverSettings(CommonSettings):
    """Everything the bounce-receiver reads; see docs/bounce-receiver.md."""

    receiver_smtp_host: str = Field(default="127.0.0.1", description="Address the MX listens on.")
    receiver_smtp_port: int = Field(default=2526, description="SMTP port of the MX (25 in production).")
    receiver_http_port: int = Field(default=8083, description="Port of `/health` and `/metrics`.")
    receiver_hostname: str = Field(
        default_factory=socket.getfqdn, description="Name in the greeting and EHLO reply."
    )
    receiver_max_message_size: int = Field(
        default=10 * MIB,
        description="Largest accepted message in bytes (SIZE; larger gets 552 5.3.4). The "
        "raw-bounce topic must allow records of 4/3 of this plus framing.",
    )
    receiver_max_recipients: int = Field(
        default=100, description="RCPTs accepted per mail; more get 452 4.5.3."
    )
    receiver_tls_cert: str | None = Field(
        default=None, description="PEM certificate (chain); STARTTLS is offered when cert and key are set."
    )
    receiver_tls_key: str | None = Field(default=None, description="PEM private key of receiver_tls_cert.")
    receiver_max_connections_per_ip: int = Field(
        default=20, description="Concurrent SMTP sessions per remote IP; more get 421 4.7.0."
    )
    receiver_rate_per_minute: float = Field(
        default=3000.0,
        description="Mails per minute per remote IP (token bucket refill); more get 450 4.7.1. A large "
        "provider returns a campaign's bounces from few IPs, so keep it generous.",
    )
    receiver_rate_burst: int = Field(
        default=500, description="Mails a remote IP may send at once before the rate applies."
    )
    receiver_role_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["postmaster", "abuse"],
        description="Local parts accepted at our bounce domains without VERP (RFC 5321 needs "
        "postmaster; ARF complaints often go to abuse). Their raw bounces have message_id null.",
    )
    receiver_session_timeout: float = Field(
        default=300.0, description="Seconds of client silence before a session is closed."
    )
    receiver_transactional_id: str | None = Field(
        default=None,
        description="Kafka transactional id of this instance; unique per running receiver. "
        "Default: `<topic_prefix>bounce-receiver-<hostname>-<pid>`.",
    )

    _split_roles = field_validator("receiver_role_addresses", mode="before")(_split_list)

    @property
    def tls_enabled(self) -> bool:
        """STARTTLS is offered only when both certificate and key are configured."""
        return bool(self.receiver_tls_cert and self.receiver_tls_key)
