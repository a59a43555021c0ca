"""Settings of the classifier stream app (BOUNCEFLOW_CLASSIFIER_* and the common keys)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from bounceflow.settings import CommonSettings


class ClassifierSettings(CommonSettings):
    """What the classifier worker reads from the environment."""

    classifier_http_port: int = Field(
        default=8084, description="Port of the worker's HTTP server (`/health`, `/metrics`)."
    )
    classifier_data_dir: str = Field(
        default="var/classifier",
        description="Directory of the worker's local state (RocksDB files of the table of sent messages).",
    )
    classifier_table_ttl: float = Field(
        default=30 * 24 * 3600.0,
        description="Seconds a sent message stays in the table; a bounce received later is "
        "published unmatched, and the sweep deletes older entries.",
    )
    classifier_table_sweep_interval: float = Field(
        default=3600.0, description="Seconds between two sweeps that delete expired table entries."
    )
    classifier_join_retry_interval: float = Field(
        default=5.0,
        description="Seconds between two join attempts of a bounce whose message is not in the table yet.",
    )
    classifier_join_retry_timeout: float = Field(
        default=60.0,
        description="Seconds after the first missed join before the bounce is published unmatched.",
    )
    classifier_session_timeout: float = Field(
        default=30.0,
        description="Kafka consumer-group session timeout (seconds): how long a killed worker "
        "holds its partitions before the group moves them.",
    )
    classifier_commit_interval: float = Field(
        default=1.0, description="Seconds between two consumer offset commits (after a producer flush)."
    )

    @property
    def table_ttl(self) -> timedelta:
        return timedelta(seconds=self.classifier_table_ttl)

    @property
    def join_retry_interval(self) -> timedelta:
        return timedelta(seconds=self.classifier_join_retry_interval)

    @property
    def join_retry_timeout(self) -> timedelta:
        return timedelta(seconds=self.classifier_join_retry_timeout)
