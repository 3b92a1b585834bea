"""Settings every service shares; each service subclasses with its own env prefix."""

import ssl
from functools import cached_property
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.pii import DEFAULT_PII_KEY_ID, DEV_ONLY_PII_KEY, PiiKeyring

# Local development credentials: fine on a laptop, refused in production.
LOCAL_SECRET_MARKERS = ("_local@", "change-me", "dev-only")


def kafka_security_options(
    protocol: str,
    *,
    mechanism: str = "SCRAM-SHA-512",
    username: str | None = None,
    password: str | None = None,
    cafile: str | None = None,
) -> dict[str, Any]:
    """aiokafka keyword arguments (clients and admin) for a security protocol."""
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(cafile=cafile)
    if protocol.startswith("SASL"):
        options["sasl_mechanism"] = mechanism
        options["sasl_plain_username"] = username
        options["sasl_plain_password"] = password
    return options


class ServiceSettings(BaseSettings):
    """Database, Kafka and delivery-guarantee knobs shared by all services."""

    # A startup error names the field, never its value: database URLs and keys are secrets.
    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str
    db_pool_size: int = Field(default=10, ge=1, le=100)
    # asyncpg's ssl mode; None: off for a loopback server, 'prefer' otherwise.
    db_ssl: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] | None = None
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    # Broker authentication: plaintext on loopback locally; SASL/SCRAM over TLS in production,
    # one principal per service whose ACLs allow only its own topics (deploy/k8s/kafka-acls.sh).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    # Prepended to every topic name: lets tests (or tenants) run on their own topics.
    topic_prefix: str = ""
    consumer_group: str | None = None
    relay_batch_size: int = Field(default=200, ge=1, le=5000)
    relay_poll_interval_seconds: float = Field(default=0.25, gt=0, le=60)
    consumer_max_attempts: int = Field(default=5, ge=1, le=100)
    consumer_retry_backoff_seconds: float = Field(default=0.1, ge=0, le=60)
    consumer_retry_backoff_max_seconds: float = Field(default=5.0, ge=0, le=600)
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    # How long a member may take to rejoin during a rebalance: it finishes the record in hand
    # and commits, never the whole batch (see shared.messaging.consumer).
    kafka_rebalance_timeout_ms: int = Field(default=60_000, ge=1_000)
    kafka_request_timeout_ms: int = Field(default=30_000, ge=1_000)
    # Bounded work per poll keeps each batch short next to the rebalance timeout.
    consumer_max_records_per_poll: int = Field(default=100, ge=1, le=5000)
    # Batching under light load: offsets are committed at most this often and the relay lets
    # a few more commits join its batch, a few milliseconds of latency for far fewer round
    # trips. A fetch returns as soon as any record is there (min bytes 1) and otherwise waits
    # up to 500 ms: asking for bigger fetches (e.g. 32 KiB within 10 ms) kept each idle
    # consumer at ~8% of a core polling the broker, against ~2% this way.
    consumer_fetch_max_wait_ms: int = Field(default=500, ge=0, le=5000)
    consumer_fetch_min_bytes: int = Field(default=1, ge=1)
    consumer_commit_interval_ms: int = Field(default=200, ge=0, le=10_000)
    relay_coalesce_ms: float = Field(default=5.0, ge=0, le=1000)
    # After stop, the relay publishes what is committed for at most this long.
    relay_drain_timeout_seconds: float = Field(default=10.0, ge=0, le=300)
    # /readyz turns not-ready while the oldest unpublished outbox row is older than this.
    outbox_ready_max_age_seconds: float = Field(default=60.0, gt=0)
    # Retention: inbox rows must outlive any redelivery (Kafka keeps 7 days by default).
    outbox_retention_hours: int = Field(default=72, ge=1)
    inbox_retention_hours: int = Field(default=14 * 24, ge=24)
    maintenance_interval_seconds: float = Field(default=600, gt=0)
    # Durable timers: due timers taken per pass (one transaction each) and the idle poll.
    timer_batch_size: int = Field(default=100, ge=1, le=5000)
    timer_poll_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    # Timers one process fires at once (each its own transaction and connection).
    timer_concurrency: int = Field(default=4, ge=1, le=32)
    log_level: str = "INFO"
    log_json: bool = True

    def body_limits_by_path_prefix(self) -> dict[str, int]:
        """Request body limits above AUTH_MAX_BODY_BYTES for a service's file routes."""
        return {}

    def kafka_client_options(self) -> dict[str, Any]:
        """aiokafka keyword arguments for the broker's security settings."""
        return kafka_security_options(
            self.kafka_security_protocol,
            mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password,
            cafile=self.kafka_ssl_cafile,
        )

    @model_validator(mode="after")
    def _refuse_local_secrets_in_production(self) -> "ServiceSettings":
        if self.environment == "production":
            if self.kafka_security_protocol != "SASL_SSL":
                raise ValueError(
                    "production talks to Kafka over SASL_SSL with the service's own principal"
                )
            for marker in LOCAL_SECRET_MARKERS:
                if marker in self.database_url:
                    raise ValueError(
                        "database_url carries a local development password; "
                        "set a real secret for production"
                    )
        return self


class PiiSettings(ServiceSettings):
    """Settings of a service that seals or opens customer contact data (`shared.pii`).

    `pii_key` is the current key, known as `pii_key_id`; `pii_keys` holds older keys by id
    (JSON in the environment, e.g. `{"k1": "..."}`) so tokens they sealed still open.
    """

    pii_key: str = DEV_ONLY_PII_KEY
    pii_key_id: str = DEFAULT_PII_KEY_ID
    pii_keys: dict[str, str] = Field(default_factory=dict)
    # The key that sealed tokens from before key ids; unset means the current key.
    pii_legacy_key_id: str | None = None

    @model_validator(mode="after")
    def _check_pii_keyring(self) -> "PiiSettings":
        older = self.pii_keys.get(self.pii_key_id)
        if older is not None and older != self.pii_key:
            raise ValueError(
                f"pii_keys names the current key id {self.pii_key_id!r} with another key"
            )
        prefix = str(self.model_config.get("env_prefix", "")).upper()
        if self.environment == "production" and DEV_ONLY_PII_KEY in (
            self.pii_key,
            *self.pii_keys.values(),
        ):
            raise ValueError(
                f"{prefix}PII_KEY and {prefix}PII_KEYS must hold real keys in production"
            )
        self.pii_keyring  # noqa: B018 - builds the keyring now: a bad key fails at startup
        return self

    @cached_property
    def pii_keyring(self) -> PiiKeyring:
        """The current key and every older one, by id."""
        return PiiKeyring(
            {**self.pii_keys, self.pii_key_id: self.pii_key},
            current_key_id=self.pii_key_id,
            legacy_key_id=self.pii_legacy_key_id,
        )
