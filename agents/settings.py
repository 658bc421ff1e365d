"""predlog's one settings object: validated, frozen, built once at start-up and passed down.

Every field can be set from the environment with the `PREDLOG_` prefix
(`PREDLOG_KAFKA_BOOTSTRAP=...`); nested names use `__`. Modules never read
`os.environ` themselves. Secrets are `SecretStr` and never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Secrets that may also come from a file (`PREDLOG_<NAME>_FILE`, e.g. a Kubernetes Secret
# mounted as a volume): the validator reads the file; its content is never printed.
SECRET_FILES = ("kafka_password", "elasticsearch_api_key", "elasticsearch_password",
                "mlflow_tracking_password", "mlflow_tracking_token", "ingest_token",
                "redact_key")


def _secret() -> Any:
    """A secret setting, validated also when unset (its `_FILE` variant may set it)."""
    return Field(None, validate_default=True)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PREDLOG_", env_nested_delimiter="__", frozen=True, extra="forbid",
        # A validation error names the setting and the rule, never the value (a secret).
        hide_input_in_errors=True,
    )

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:19092"
    # Authentication for every Kafka client predlog makes (`agents/kafka_auth.py`). SASL
    # needs the username and password (from the environment or a Kubernetes Secret).
    kafka_security_protocol: str = Field(
        "PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$")
    kafka_sasl_mechanism: str = Field("SCRAM-SHA-512",
                                      pattern="^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$")
    kafka_username: str | None = None
    kafka_password_file: str | None = None
    kafka_password: SecretStr | None = _secret()
    kafka_ca_file: str | None = None  # for SSL/SASL_SSL; the system CAs when unset
    topic_events: str = "predlog.events"
    topic_seldon: str = "seldon"
    topic_labels: str = "predlog.labels"
    topic_windows: str = "predlog.windows"
    topic_dlq: str = "predlog.dlq"
    topic_pairs: str = "predlog.pairs"
    # External logger topics, rekeyed by request id into topic_events: Seldon v1 Kafka
    # mode, MLServer, and every Seldon v2 model topic.
    external_topics_pattern: str = (
        r"^(seldon|mlserver-input|mlserver-output|seldon\..+\.model\..+\.(inputs|outputs))$"
    )
    # How often the re-key stage refreshes topic metadata: a new topic matching the pattern
    # (a Seldon v2 model deployed after start) is read within about this long.
    topic_refresh_seconds: float = Field(30.0, gt=0)
    partitions: int = Field(4, ge=1, le=1024)  # of predlog's own topics and tables
    consumer_group: str = "predlog"
    # Faust's working directory (table metadata); "" = Faust's default, ./<group>-data.
    data_dir: str = ""
    # Where the worker keeps its label joins (predictions waiting for labels, for the
    # label horizon): "memory", a changelogged Faust table (grows with traffic x horizon);
    # "disk" (experimental: see README "Known limits"), RocksDB per events partition
    # (agents/labelstate.py) under label_state_dir ("" = <data dir>/labelstate), whose
    # memory is its block cache (half) and two write buffers (a quarter each),
    # label_state_memory_mb per events partition held.
    label_state: str = Field("memory", pattern="^(memory|disk)$")
    label_state_dir: str = ""
    label_state_memory_mb: int = Field(16, ge=4, le=65536)
    batch_size: int = Field(1000, ge=1)
    batch_seconds: float = Field(0.5, gt=0)
    # A worker whose rebalance waits this long for its stages to finish their batches is
    # stuck: it logs every task's stack and exits (Kubernetes restarts it; its state is in
    # the changelogs), instead of holding its place in the group forever.
    stuck_rebalance_seconds: float = Field(180.0, gt=0)
    # The worker's event loop: uvloop (libuv) cost ~15% less CPU per record than asyncio's
    # own loop in bench/worker_bench.py; "asyncio" is the fallback.
    event_loop: str = Field("uvloop", pattern="^(uvloop|asyncio)$")
    idle_partition_seconds: float = Field(30.0, gt=0)
    # The compiled decoder (predlog-native) in front of the Python decoders, when installed;
    # PREDLOG_NATIVE=0: the Python decoders only. Applied by the drivers at start
    # (`stream.decode.native.set_enabled`).
    native: bool = True
    # Live deployments whose event time follows the wall clock: let the watermark be at
    # least now − this lag, so the last window closes without waiting for new traffic.
    # Leave unset when replaying old logs through Kafka (their windows would all be late).
    wall_clock_lag_seconds: float | None = Field(None, gt=0)

    # Windows
    window_seconds: float = Field(300.0, gt=0)
    allowed_lateness_seconds: float = Field(60.0, ge=0)
    pairing_ttl_seconds: float = Field(300.0, gt=0)

    # Monitoring (worker and replay; `agents.monitoring_setup`): "[MODEL=]FILE,..." reference
    # profiles (CSV/Parquet or built .npz)
    references: str = ""
    task: str = Field("auto", pattern="^(auto|classification|regression)$")
    # How long predictions wait for their labels, and emitted windows for revisions.
    label_horizon_seconds: float = Field(7 * 86400.0, gt=0)
    drift_min_rows: int = Field(30, ge=1)
    # An Evidently HTML report every N drift windows per model (0: none), written to
    # reports_dir off the event loop and attached to the window's MLflow run.
    report_every: int = Field(0, ge=0)
    # A model without a reference gets one from its own first traffic
    # (stream.drift.bootstrap): its windows of the first REFERENCE_BOOTSTRAP_SECONDS, at
    # most REFERENCE_BOOTSTRAP_ROWS rows (0: no bootstrap, drift says "no_reference").
    reference_bootstrap_seconds: float = Field(86400.0, gt=0)
    reference_bootstrap_rows: int = Field(10_000, ge=0)
    # Per-segment serving counts, drift and performance in every window (stream.segments):
    # "COLUMN,..." categorical input features; per window and column the SEGMENT_TOP_K
    # values with the most rows, the rest as "__other__".
    segment_columns: str = ""
    segment_top_k: int = Field(10, ge=1, le=1000)
    reports_dir: str = "predlog-reports"

    # Sinks
    elasticsearch_url: str = "http://127.0.0.1:19200"  # "" disables the sink
    # Either an API key or basic auth (e.g. behind a TLS-terminating proxy); a CA file for a
    # private CA (the system CAs when unset). Used by the sink and `replay --from-elasticsearch`.
    elasticsearch_api_key_file: str | None = None
    elasticsearch_api_key: SecretStr | None = _secret()
    elasticsearch_username: str | None = None
    elasticsearch_password_file: str | None = None
    elasticsearch_password: SecretStr | None = _secret()
    elasticsearch_ca_file: str | None = None
    elasticsearch_index_template: str = "predlog-predictions-{namespace}-{model}-{date}"
    web_host: str = "127.0.0.1"  # the worker's /metrics, /healthz, /readyz
    prometheus_port: int = Field(6066, ge=1, le=65535)
    mlflow_tracking_uri: str = ""  # e.g. http://127.0.0.1:15000; "" disables the MLflow sink
    # MLflow's basic-auth server app (or a bearer token), and a CA file for an https tracking
    # server with a private CA; handed to MLflow's client by `agents.mlflow_auth`.
    mlflow_tracking_username: str | None = None
    mlflow_tracking_password_file: str | None = None
    mlflow_tracking_password: SecretStr | None = _secret()
    mlflow_tracking_token_file: str | None = None
    mlflow_tracking_token: SecretStr | None = _secret()
    mlflow_ca_file: str | None = None

    # Redaction (`stream.redaction`) of what leaves predlog for Elasticsearch, dead letters
    # and logs: comma-separated document paths (`features.email`, `features.card_*`,
    # `prediction`, `error_message`) or headers (`headers.x-user-id`). Drift and performance
    # use the original values. `hash` is HMAC-SHA256 keyed by PREDLOG_REDACT_KEY.
    redact_drop: str = ""
    redact_hash: str = ""
    redact_mask: str = ""
    redact_key_file: str | None = None
    redact_key: SecretStr | None = _secret()
    # With any rule set, a dead letter's raw value is replaced by its hash and length
    # ("redact") unless "keep"; headers named in the rules are redacted either way.
    redact_dead_letters: str = Field("redact", pattern="^(redact|keep)$")

    # HTTP ingest gateway
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(8085, ge=1, le=65535)
    ingest_max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    ingest_token_file: str | None = None
    ingest_token: SecretStr | None = _secret()
    ingest_access_log: bool = False  # aiohttp's access log: one line per logged event

    # MLflow exporter (`predlog mlflow-exporter`, agents/mlflow_exporter.py): polls
    # mlflow_tracking_uri and serves mlflow_* metrics on http://HOST:PORT/metrics.
    mlflow_exporter_host: str = "127.0.0.1"
    mlflow_exporter_port: int = Field(6067, ge=1, le=65535)
    mlflow_exporter_interval_seconds: float = Field(30.0, gt=0)
    mlflow_exporter_timeout_seconds: float = Field(10.0, gt=0)  # per MLflow request
    mlflow_exporter_runs_per_experiment: int = Field(20, ge=1)  # newest runs read (series bound)
    mlflow_exporter_include: str = ""  # regex (searched) on experiment/model names; "" = all

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_username and self.kafka_password):
            raise ValueError(f"PREDLOG_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} "
                             "needs PREDLOG_KAFKA_USERNAME and PREDLOG_KAFKA_PASSWORD")
        return self

    @model_validator(mode="after")
    def _http_credentials_complete(self) -> Settings:
        for service, password in (("elasticsearch", self.elasticsearch_password),
                                  ("mlflow_tracking", self.mlflow_tracking_password)):
            user = getattr(self, f"{service}_username")
            env = f"PREDLOG_{service.upper()}"
            if bool(user) != (password is not None):
                raise ValueError(f"{env}_USERNAME and {env}_PASSWORD (or {env}_PASSWORD_FILE) "
                                 "go together")
        if self.elasticsearch_api_key is not None and self.elasticsearch_username:
            raise ValueError("set PREDLOG_ELASTICSEARCH_API_KEY or PREDLOG_ELASTICSEARCH_USERNAME/"
                             "PASSWORD, not both")
        if self.redact_hash and self.redact_key is None:
            raise ValueError("PREDLOG_REDACT_HASH needs PREDLOG_REDACT_KEY (or "
                             "PREDLOG_REDACT_KEY_FILE): the key of the HMAC")
        return self

    @field_validator(*SECRET_FILES, mode="after")
    @classmethod
    def _secret_from_file(cls, value: SecretStr | None, info: ValidationInfo
                          ) -> SecretStr | None:
        """`PREDLOG_<NAME>_FILE`: the secret is the file's content (a trailing newline
        dropped). Errors name the setting and the path, never the content."""
        path = info.data.get(f"{info.field_name}_file")
        if not path:
            return value
        env = f"PREDLOG_{str(info.field_name).upper()}"
        if value is not None:
            raise ValueError(f"set {env} or {env}_FILE, not both")
        try:
            text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ValueError(f"{env}_FILE={path}: cannot read it ({reason})") from None
        if not text:
            raise ValueError(f"{env}_FILE={path} is empty")
        return SecretStr(text)

    @field_validator("redact_drop", "redact_hash", "redact_mask")
    @classmethod
    def _redaction_rules_parse(cls, value: str) -> str:
        from stream.redaction import parse_rules

        parse_rules(value)  # ValueError on a bad rule
        return value

    @field_validator("segment_columns")
    @classmethod
    def _segment_columns_distinct(cls, value: str) -> str:
        columns = [c.strip() for c in value.split(",") if c.strip()]
        if len(set(columns)) != len(columns):
            raise ValueError(f"segment columns repeat: {value!r}")
        return ",".join(columns)

    def segments(self) -> tuple[str, ...]:
        """The segment columns, in order (none: no segments).

        >>> Settings(segment_columns=" origin, carrier").segments()
        ('origin', 'carrier')
        """
        return tuple(c for c in self.segment_columns.split(",") if c)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"bootstrap server {server!r} is not host:port")
        return value


def parse_references(value: str | list[str]) -> dict[str, str]:
    """`"iris=/r/iris.npz,*=/r/any.csv"` (the setting), or a list of `[MODEL=]FILE` items
    (repeated `--reference` flags) → {"iris": ..., "*": ...}; no MODEL= means every model.

    >>> parse_references("iris=/r/iris.npz, /r/all.csv")
    {'iris': '/r/iris.npz', '*': '/r/all.csv'}
    >>> parse_references(["iris=/r/iris.npz", "/r/all.csv"])
    {'iris': '/r/iris.npz', '*': '/r/all.csv'}
    """
    items = value.split(",") if isinstance(value, str) else value
    out = {}
    for item in filter(None, (x.strip() for x in items)):
        model, sep, path = item.rpartition("=")
        out[model if sep else "*"] = path
    return out


def make_redactor(settings: Settings):
    """The `stream.redaction.Redactor` of the PREDLOG_REDACT_* settings (inactive without rules)."""
    from stream.redaction import Redactor

    key = settings.redact_key.get_secret_value().encode() if settings.redact_key else b""
    return Redactor(settings.redact_drop, settings.redact_hash, settings.redact_mask, key=key,
                    keep_dead_letters=settings.redact_dead_letters == "keep")


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment plus explicit overrides (CLI flags)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
