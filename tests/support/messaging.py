"""A throwaway schema with an outbox, an inbox and an effects table, for messaging tests."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, Text, Uuid, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import create_engine, create_sessionmaker, make_metadata
from shared.events import EventEnvelope, EventPayload, Topic, new_event
from shared.events.registry import register_payload
from shared.messaging import Outbox, inbox_table, outbox_table


@register_payload
class Probe(EventPayload):
    """A payload only tests publish: a sequence number per complaint."""

    event_type = "probe.recorded"
    schema_version = 1
    topic = Topic.INTAKE_COMPLAINT  # overridden per test through the relay's topic prefix

    sequence: int
    merchant_id: str = "m-test"


@dataclass
class MessagingSchema:
    """The tables of one throwaway schema and a session factory on them."""

    schema: str
    metadata: MetaData
    outbox: Outbox
    inbox: Table
    effects: Table
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def count(self, table: Table, **where: Any) -> int:
        """Counts rows, optionally filtered by column equality."""
        return await count_rows(self.sessionmaker, table, **where)


async def count_rows(
    sessionmaker: async_sessionmaker[AsyncSession], table: Table, **where: Any
) -> int:
    """Counts a table's rows, optionally filtered by column equality."""
    statement = select(func.count()).select_from(table)
    for column, value in where.items():
        statement = statement.where(table.c[column] == value)
    async with sessionmaker() as session:
        return int(await session.scalar(statement) or 0)


def probe_event(complaint_id: uuid.UUID, sequence: int) -> EventEnvelope[Probe]:
    """An envelope around a Probe payload."""
    return new_event(
        Probe(sequence=sequence),
        producer="tests",
        complaint_id=complaint_id,
        correlation_id=f"test-{sequence}",
    )


async def record_effect(session: AsyncSession, effects: Table, event: EventEnvelope[Any]) -> None:
    """The handler effect under test: one row per handled event."""
    await session.execute(
        insert(effects).values(
            event_id=event.event_id,
            complaint_id=event.complaint_id,
            sequence=event.payload.sequence if hasattr(event.payload, "sequence") else -1,
        )
    )


@asynccontextmanager
async def messaging_schema(admin_url: str) -> AsyncIterator[MessagingSchema]:
    """Creates the schema and its tables, yields them, drops them."""
    schema = f"msgtest_{uuid.uuid4().hex[:8]}"
    metadata = make_metadata(schema)
    outbox = Outbox(outbox_table(metadata))
    inbox = inbox_table(metadata)
    effects = Table(
        "effects",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False),
        Column("complaint_id", Uuid, nullable=False),
        Column("sequence", Integer, nullable=False),
        Column("note", Text, nullable=True),
    )
    engine = create_engine(admin_url, pool_size=5)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    try:
        yield MessagingSchema(
            schema=schema,
            metadata=metadata,
            outbox=outbox,
            inbox=inbox,
            effects=effects,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
        )
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()
