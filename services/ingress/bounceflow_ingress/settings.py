"""Settings of the ingress (`BOUNCEFLOW_INGRESS_*`), on top of the common ones.

Built once in `__main__` (or by a test) and passed to `IngressService`.
"""

from __future__ import annotations

import socket

from pydantic import Field

from bounceflow.settings import CommonSettings

MIB = 1024 * 1024


class IngressSettings(CommonSettings):
    """Everything the SMTP and REST listeners need."""

    ingress_smtp_host: str = Field(default="127.0.0.1", description="Address of the SMTP listener.")
    ingress_smtp_port: int = Field(default=2525, description="Port of the SMTP listener (0: pick a free one).")
    ingress_http_port: int = Field(
        default=8080, description="Port of the REST API, `/health` and `/metrics` (0: pick a free one)."
    )
    ingress_hostname: str = Field(
        default_factory=socket.getfqdn,
        description="Name in the SMTP greeting and the domain of Message-IDs we add.",
    )
    ingress_tls_cert: str | None = Field(
        default=None, description="PEM certificate chain; STARTTLS is offered when cert and key are set."
    )
    ingress_tls_key: str | None = Field(default=None, description="PEM private key of `ingress_tls_cert`.")
    ingress_auth_plaintext_loopback: bool = Field(
        default=False,
        description="Allow SMTP AUTH without TLS from 127.0.0.1/::1 (`make run` sets it). "
        "Everywhere else AUTH is only offered after STARTTLS.",
    )
    ingress_max_message_size: int = Field(
        default=25 * MIB, description="Largest message accepted, in bytes (SMTP SIZE, DATA, REST)."
    )
    ingress_max_recipients: int = Field(default=1000, description="Most recipients per message.")
    ingress_auth_max_failures: int = Field(
        default=5, description="Failed logins (SMTP AUTH or API key) per client address within the window "
        "before further attempts are refused without checking."
    )
    ingress_auth_failure_window: float = Field(
        default=300.0, description="Seconds the auth failures of a client address are remembered."
    )
    ingress_kafka_producers: int = Field(
        default=2, ge=1,
        description="Group-committing transactional writers. A message joins the writer with the most "
        "messages in flight (few, large transactions under load); one that finds all idle takes the "
        "writer idle longest, so a lone session does not wait for the last commit's markers.",
    )
    ingress_smtp_timeout: float = Field(default=300.0, description="Idle timeout of an SMTP session, seconds.")
