"""Where the local stack lives: one place that turns environment variables into addresses."""

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from services.catalog import ServiceEntry
from shared.settings import kafka_security_options


@dataclass(frozen=True)
class StackConfig:
    """Addresses and credentials of the local stack (env COMPLAINTS_*)."""

    pg_host: str
    pg_port: int
    pg_database: str
    admin_user: str
    admin_password: str
    kafka_bootstrap: str
    topic_prefix: str
    partitions: int
    port_offset: int
    # Topic durability and retention: local single broker 1/1; production 3/2 (deploy/k8s).
    replication_factor: int = 1
    min_insync_replicas: int = 1
    retention_hours: int = 7 * 24
    dlq_retention_hours: int = 30 * 24
    # The admin principal for topic administration on a SASL cluster (plaintext locally).
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "StackConfig":
        """Reads COMPLAINTS_* variables with local defaults."""
        e = dict(os.environ if env is None else env)
        # One DSN (as in Kubernetes) or its parts (as in the local scripts).
        if e.get("COMPLAINTS_ADMIN_DSN"):
            dsn = urlsplit(e["COMPLAINTS_ADMIN_DSN"])
            e.setdefault("COMPLAINTS_PG_HOST", dsn.hostname or "127.0.0.1")
            e.setdefault("COMPLAINTS_PG_PORT", str(dsn.port or 5432))
            e.setdefault("COMPLAINTS_PG_ADMIN_USER", unquote(dsn.username or ""))
            e.setdefault("COMPLAINTS_PG_ADMIN_PASSWORD", unquote(dsn.password or ""))
        return cls(
            pg_host=e.get("COMPLAINTS_PG_HOST", "127.0.0.1"),
            pg_port=int(e.get("COMPLAINTS_PG_PORT", "5432")),
            pg_database=e.get("COMPLAINTS_PG_DB", "complaints"),
            admin_user=e.get("COMPLAINTS_PG_ADMIN_USER", "complaints_admin"),
            admin_password=e.get("COMPLAINTS_PG_ADMIN_PASSWORD", "complaints_admin"),
            kafka_bootstrap=e.get(
                "COMPLAINTS_KAFKA_BOOTSTRAP_SERVERS",
                f"127.0.0.1:{e.get('COMPLAINTS_KAFKA_PORT', '19092')}",
            ),
            topic_prefix=e.get("COMPLAINTS_TOPIC_PREFIX", ""),
            partitions=int(e.get("COMPLAINTS_TOPIC_PARTITIONS", "6")),
            port_offset=int(e.get("COMPLAINTS_PORT_OFFSET", "0")),
            replication_factor=int(e.get("COMPLAINTS_TOPIC_REPLICATION_FACTOR", "1")),
            min_insync_replicas=int(e.get("COMPLAINTS_TOPIC_MIN_INSYNC_REPLICAS", "1")),
            retention_hours=int(e.get("COMPLAINTS_TOPIC_RETENTION_HOURS", str(7 * 24))),
            dlq_retention_hours=int(e.get("COMPLAINTS_DLQ_RETENTION_HOURS", str(30 * 24))),
            kafka_security_protocol=e.get("COMPLAINTS_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
            kafka_sasl_mechanism=e.get("COMPLAINTS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            kafka_sasl_username=e.get("COMPLAINTS_KAFKA_SASL_USERNAME") or None,
            kafka_sasl_password=e.get("COMPLAINTS_KAFKA_SASL_PASSWORD") or None,
            kafka_ssl_cafile=e.get("COMPLAINTS_KAFKA_SSL_CAFILE") or None,
        )

    def kafka_admin_options(self) -> dict[str, Any]:
        """aiokafka options of the admin principal (topic administration)."""
        return kafka_security_options(
            self.kafka_security_protocol,
            mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password,
            cafile=self.kafka_ssl_cafile,
        )

    @property
    def retention_ms(self) -> int:
        """retention.ms of the main topics (-1 hours: kept forever)."""
        return _hours_to_ms(self.retention_hours)

    @property
    def dlq_retention_ms(self) -> int:
        """retention.ms of the dead-letter topics (-1 hours: kept forever)."""
        return _hours_to_ms(self.dlq_retention_hours)

    def admin_dsn(self, database: str = "postgres") -> str:
        """asyncpg DSN of the admin role (provisioning only, never used by services)."""
        return (
            f"postgresql://{self.admin_user}:{self.admin_password}"
            f"@{self.pg_host}:{self.pg_port}/{database}"
        )

    def service_password(self, entry: ServiceEntry) -> str:
        """The service role's password: from env in real deployments, a local default here."""
        explicit = os.environ.get(f"{entry.env_prefix}DB_PASSWORD")
        if explicit:
            return explicit
        url = os.environ.get(f"{entry.env_prefix}DATABASE_URL")
        if url and urlsplit(url).password:
            return unquote(urlsplit(url).password or "")
        return f"{entry.name}_local"

    def service_database_url(self, entry: ServiceEntry) -> str:
        """The SQLAlchemy URL a service connects with (its own role)."""
        explicit = os.environ.get(f"{entry.env_prefix}DATABASE_URL")
        if explicit:
            return explicit
        return (
            f"postgresql+asyncpg://{entry.schema}:{self.service_password(entry)}"
            f"@{self.pg_host}:{self.pg_port}/{self.pg_database}"
        )

    def service_port(self, entry: ServiceEntry) -> int:
        """The HTTP port of a service."""
        return entry.port + self.port_offset

    def service_env(self, entry: ServiceEntry) -> dict[str, str]:
        """The environment a service process is started with."""
        prefix = entry.env_prefix
        return {
            f"{prefix}DATABASE_URL": self.service_database_url(entry),
            f"{prefix}KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            f"{prefix}TOPIC_PREFIX": self.topic_prefix,
        }


def _hours_to_ms(hours: int) -> int:
    return -1 if hours < 0 else hours * 3_600_000
