"""Creates the database, one login role and one schema per service, each role walled in."""

import asyncpg

from services.catalog import CATALOG
from services.environment import StackConfig
from shared.events.topics import all_topic_names
from shared.messaging.kafka import ensure_topics


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe identifier {name!r}")
    return f'"{name}"'


async def provision(config: StackConfig, *, database: str | None = None) -> None:
    """Idempotently creates roles, the database and the schemas with least privilege."""
    database = database or config.pg_database
    admin = await asyncpg.connect(config.admin_dsn("postgres"))
    try:
        for entry in CATALOG:
            role = entry.schema
            password = config.service_password(entry)
            exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            verb = "ALTER" if exists else "CREATE"
            # Passwords cannot be bound parameters in DDL; quote them as literals.
            literal = "'" + password.replace("'", "''") + "'"
            await admin.execute(
                f"{verb} ROLE {_ident(role)} LOGIN PASSWORD {literal} "
                "NOSUPERUSER NOCREATEDB NOCREATEROLE"
            )
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await admin.execute(f"CREATE DATABASE {_ident(database)}")
    finally:
        await admin.close()

    conn = await asyncpg.connect(config.admin_dsn(database))
    try:
        await conn.execute(f"REVOKE ALL ON DATABASE {_ident(database)} FROM PUBLIC")
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for entry in CATALOG:
            role = _ident(entry.schema)
            await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {_ident(database)} TO {role}")
            await conn.execute(
                f"CREATE SCHEMA IF NOT EXISTS {_ident(entry.schema)} AUTHORIZATION {role}"
            )
            await conn.execute(f"ALTER SCHEMA {_ident(entry.schema)} OWNER TO {role}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {_ident(entry.schema)} FROM PUBLIC")
            await conn.execute(
                f"ALTER ROLE {role} IN DATABASE {_ident(database)} SET search_path = {role}"
            )
    finally:
        await conn.close()


async def drop_database(config: StackConfig, database: str) -> None:
    """Drops a database (tests use throwaway ones)."""
    admin = await asyncpg.connect(config.admin_dsn("postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {_ident(database)} WITH (FORCE)")
    finally:
        await admin.close()


async def ensure_platform_topics(
    config: StackConfig, *, force_partitions: bool = False
) -> dict[str, str]:
    """Creates or corrects every topic and its dead-letter twin with the stack's settings."""
    return await ensure_topics(
        config.kafka_bootstrap,
        all_topic_names(config.topic_prefix),
        partitions=config.partitions,
        replication_factor=config.replication_factor,
        min_insync_replicas=config.min_insync_replicas,
        retention_ms=config.retention_ms,
        dlq_retention_ms=config.dlq_retention_ms,
        force_partitions=force_partitions,
        security=config.kafka_admin_options(),
    )
