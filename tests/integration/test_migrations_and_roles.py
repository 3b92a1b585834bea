"""Migrations are reversible and versioned inside their schema; each role is walled in."""

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace

import asyncpg
import pytest

from services.catalog import BY_NAME, CATALOG
from services.provision import drop_database, provision
from shared.db.migrations import downgrade, upgrade
from tests.support.stack import StackUnderTest

pytestmark = pytest.mark.stack


@pytest.fixture
def scratch(stack: StackUnderTest) -> Iterator[StackUnderTest]:
    """A second throwaway database, so migrating down never disturbs the running services."""
    database = f"complaints_mig_{uuid.uuid4().hex[:8]}"
    config = replace(stack.config, pg_database=database)
    asyncio.run(provision(config))
    yield replace(stack, config=config, database=database)
    asyncio.run(drop_database(config, database))


async def tables_by_schema(dsn: str) -> dict[str, set[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
    finally:
        await conn.close()
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["table_schema"], set()).add(row["table_name"])
    return found


def migrate_all(config, direction) -> None:  # type: ignore[no-untyped-def]
    for entry in CATALOG:
        direction(entry.package, config.service_database_url(entry))


def test_migrations_go_up_down_and_up_again_inside_their_own_schema(scratch: StackUnderTest):
    migrate_all(scratch.config, upgrade)
    tables = asyncio.run(tables_by_schema(scratch.admin_dsn()))
    assert "public" not in tables, "nothing lands in public"
    for entry in CATALOG:
        assert {"alembic_version", "outbox", "api_keys", "users"} <= tables[entry.schema], (
            entry.schema
        )
    assert {"complaints", "idempotency_keys"} <= tables["intake"]
    assert "inbox" in tables["triage"]

    migrate_all(scratch.config, downgrade)
    tables = asyncio.run(tables_by_schema(scratch.admin_dsn()))
    for entry in CATALOG:
        assert tables.get(entry.schema, set()) == {"alembic_version"}, (
            f"{entry.schema} not reverted"
        )

    migrate_all(scratch.config, upgrade)
    again = asyncio.run(tables_by_schema(scratch.admin_dsn()))
    assert "outbox" in again["notification"]


async def test_a_service_role_cannot_touch_another_schema(stack: StackUnderTest):
    triage = BY_NAME["triage"]
    url = stack.config.service_database_url(triage).replace(
        "postgresql+asyncpg://", "postgresql://"
    )
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM triage.triages") >= 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM intake.complaints LIMIT 1")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.sneaky (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE resolution.sneaky (id int)")
    finally:
        await conn.close()


@pytest.mark.parametrize("service", [entry.name for entry in CATALOG])
async def test_no_service_role_can_read_or_write_another_schemas_credentials(
    stack: StackUnderTest, service: str
):
    entry = BY_NAME[service]
    url = stack.config.service_database_url(entry).replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM {service}.api_keys") >= 0
        for other in CATALOG:
            if other.name == service:
                continue
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT * FROM {other.schema}.api_keys LIMIT 1")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"UPDATE {other.schema}.users SET disabled = false")
    finally:
        await conn.close()
