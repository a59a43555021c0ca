"""Typed settings shared by every service (pydantic-settings).

Each value is read from the environment as `BOUNCEFLOW_<NAME>` (or from the
`.env`-style file named by BOUNCEFLOW_ENV_FILE). Services subclass
`CommonSettings` with their own keys. Settings are built once in a service's
`__main__` and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TOPICS = (
    "outgoing",
    "delivery-result",
    "raw-bounce",
    "raw-bounce-retry",
    "classified-bounce",
    "outgoing-retry",
    "notification-retry",
    "notification-dead-letter",
)


def _split_list(value):
    """Accept `a,b` as well as a list (env vars are easier to write that way)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class CommonSettings(BaseSettings):
    """Settings every service reads."""

    model_config = SettingsConfigDict(env_prefix="BOUNCEFLOW_", extra="ignore")

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated."
    )
    topic_prefix: str = Field(
        default="",
        description="Prefix for every topic and consumer group (tests use one per test).",
    )
    topic_partitions: int = Field(
        default=4,
        description="Partitions when a service creates a missing topic. `outgoing` and "
        "`raw-bounce` must have the same count (co-partitioned join).",
    )
    kafka_ack_timeout: float = Field(
        default=10.0, description="Seconds to wait for Kafka to acknowledge a record."
    )
    kafka_transaction_linger_ms: float = Field(
        default=5.0,
        description="At the SMTP edges (ingress, bounce-receiver), while several sessions send at "
        "once: how long the group-committing writer waits for more mails before it starts a Kafka "
        "transaction. Larger transactions cost the broker and the consumers less per mail; a "
        "mail's 250 waits at most this much longer. 0: never wait.",
    )
    kafka_fetch_min_bytes: int = Field(
        default=16 * 1024,
        description="A consumer's fetch returns once this many bytes are waiting (or after "
        "`kafka_fetch_max_wait_ms`): under load, fewer and larger fetches, which costs the broker "
        "and the services less CPU than one fetch per record.",
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=100,
        description="How long the broker holds a fetch that has less than `kafka_fetch_min_bytes`: "
        "the most a record waits at each hop when traffic is light, and, when idle, one fetch "
        "round trip per consumer this often.",
    )
    accounts_file: str = Field(
        default="var/accounts.json", description="Path of the accounts file (JSON)."
    )
    verp_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="HMAC secrets for VERP addresses, comma-separated; the first signs, "
        "the others still verify (rotation grace period). Required.",
    )
    bounce_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["bounces.localhost"],
        description="Domains whose VERP addresses we receive bounces for; the first is "
        "the default for accounts that name none.",
    )
    http_host: str = Field(default="127.0.0.1", description="Address of the HTTP listener.")
    log_level: str = Field(default="INFO", description="Python log level.")

    @field_validator("verp_secrets", "bounce_domains", mode="before")
    @classmethod
    def _split_lists(cls, value):
        return _split_list(value)

    def topic(self, name: str) -> str:
        """Full name of one of the contract topics (or a retry/dead-letter topic)."""
        return f"{self.topic_prefix}{name}"

    def group(self, name: str) -> str:
        """Consumer group id, prefixed like the topics."""
        return f"{self.topic_prefix}{name}"

    def verp_secret_values(self) -> list[str]:
        """The VERP secrets in clear, for the codec; raises when none is set."""
        values = [s.get_secret_value() for s in self.verp_secrets]
        if not values:
            raise ValueError("BOUNCEFLOW_VERP_SECRETS is not set")
        return values
