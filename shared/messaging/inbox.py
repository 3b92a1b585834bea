"""Idempotent consumer: a row per (consumer, event) written with the handler's effects."""

import functools
from uuid import UUID

from sqlalchemy import (
    Column,
    DateTime,
    Executable,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.statements import execute


def inbox_table(metadata: MetaData) -> Table:
    """Defines `<schema>.inbox` on a service's MetaData."""
    return Table(
        "inbox",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


async def claim_event(
    session: AsyncSession, table: Table, *, consumer: str, event_id: UUID, event_type: str
) -> bool:
    """Records the event as handled by this consumer; False if it already was."""
    result = await execute(
        session,
        _claim_statement(table),
        {"consumer": consumer, "event_id": event_id, "event_type": event_type},
    )
    return result.first() is not None


async def claim_events(
    session: AsyncSession, table: Table, *, consumer: str, events: list[tuple[UUID, str]]
) -> set[UUID]:
    """Records a batch of (event id, type) in one statement; returns the ids not seen before.

    An id twice in the batch is returned once: the caller handles its first occurrence only.
    """
    if not events:
        return set()
    result = await execute(
        session,
        _claim_many_statement(table),
        {
            "consumer": consumer,
            "event_ids": [event_id for event_id, _ in events],
            "event_types": [event_type for _, event_type in events],
        },
    )
    return {row.event_id for row in result}


@functools.cache
def _claim_many_statement(table: Table) -> Executable:
    # One round trip for a whole poll instead of one per event (DO NOTHING also skips an id
    # repeated within the batch).
    return text(
        f"INSERT INTO {table.fullname} (consumer, event_id, event_type) "
        "SELECT :consumer, claimed.event_id, claimed.event_type "
        "FROM unnest(CAST(:event_ids AS uuid[]), CAST(:event_types AS text[])) "
        "AS claimed(event_id, event_type) "
        "ON CONFLICT DO NOTHING RETURNING event_id"
    )


@functools.cache
def _claim_statement(table: Table) -> Executable:
    # Built once per inbox: on every event, building and keying a new statement would cost
    # more CPU than running it.
    return (
        insert(table)
        .values(
            consumer=bindparam("consumer"),
            event_id=bindparam("event_id"),
            event_type=bindparam("event_type"),
        )
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
