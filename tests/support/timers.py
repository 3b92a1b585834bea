"""A throwaway schema with timers (built by the migration op), an outbox and an effects table."""

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Column, Integer, MetaData, Table, Text, Uuid, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import create_engine, create_sessionmaker, make_metadata
from shared.db.timers_migration import create_timers
from shared.messaging import Outbox, outbox_table
from shared.timers import timers_table
from tests.support.messaging import count_rows

PROBE_KIND = "probe.due"


@dataclass
class TimerTables:
    """The tables of one throwaway timers schema, as both test and worker process see them."""

    schema: str
    metadata: MetaData
    timers: Table
    effects: Table
    outbox: Outbox


def timer_tables(schema: str) -> TimerTables:
    """Defines the schema's tables (without touching the database)."""
    metadata = make_metadata(schema)
    effects = Table(
        "effects",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        # No unique constraint on purpose: a double firing must show up as two rows.
        Column("timer_id", Uuid, nullable=False),
        Column("worker", Text, nullable=False),
        Column("note", Text, nullable=True),
    )
    return TimerTables(
        schema=schema,
        metadata=metadata,
        timers=timers_table(metadata),
        effects=effects,
        outbox=Outbox(outbox_table(metadata)),
    )


@dataclass
class TimersSchema(TimerTables):
    """A created schema with an engine on it."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def count(self, table: Table, **where: Any) -> int:
        """Counts rows, optionally filtered by column equality."""
        return await count_rows(self.sessionmaker, table, **where)

    async def statuses(self) -> Counter[str]:
        """How many timers are in each status."""
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(self.timers.c.status, func.count()).group_by(self.timers.c.status)
            )
            return Counter({status: int(count) for status, count in rows.all()})

    async def effects_per_timer(self) -> Counter[uuid.UUID]:
        """How many effect rows each timer produced."""
        async with self.sessionmaker() as session:
            rows = await session.execute(select(self.effects.c.timer_id))
            return Counter(row.timer_id for row in rows)


def _create_timers_by_migration(connection: Connection, schema: str) -> None:
    with Operations.context(MigrationContext.configure(connection)):
        create_timers(schema)


@asynccontextmanager
async def timers_schema(admin_url: str) -> AsyncIterator[TimersSchema]:
    """Creates the schema (timers through the services' migration op), yields it, drops it."""
    schema = f"timertest_{uuid.uuid4().hex[:8]}"
    tables = timer_tables(schema)
    engine = create_engine(admin_url, pool_size=5)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(_create_timers_by_migration, schema)
        await conn.run_sync(
            tables.metadata.create_all, tables=[tables.effects, tables.outbox.table]
        )
    try:
        yield TimersSchema(**vars(tables), engine=engine, sessionmaker=create_sessionmaker(engine))
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()
