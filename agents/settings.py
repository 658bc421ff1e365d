"""predlog's one settings object: validated, frozen, built once at start-up and passed down.

Every field can be set from the environment with the `PREDLOG_` prefix
(`PREDLOG_KAFKA_BOOTSTRAP=...`); nested names use `__`. Modules never read
`os.environ` themselves. Secrets are `SecretStr` and never printed.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PREDLOG_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    topic_events: str = "predlog.events"
    topic_seldon: str = "seldon"
    topic_labels: str = "predlog.labels"
    topic_windows: str = "predlog.windows"
    topic_dlq: str = "predlog.dlq"
    consumer_group: str = "predlog"

    # Windows
    window_seconds: float = Field(300.0, gt=0)
    allowed_lateness_seconds: float = Field(60.0, ge=0)
    pairing_ttl_seconds: float = Field(300.0, gt=0)

    # Sinks
    elasticsearch_url: str = "http://127.0.0.1:19200"
    elasticsearch_api_key: SecretStr | None = None
    prometheus_port: int = Field(6066, ge=1, le=65535)
    mlflow_tracking_uri: str = "http://127.0.0.1:15000"

    # HTTP ingest gateway
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(8085, ge=1, le=65535)
    ingest_max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    ingest_token: SecretStr | None = None

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"bootstrap server {server!r} is not host:port")
        return value


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment plus explicit overrides (CLI flags)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
