"""The timers table every service owns: one row per durable reminder."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Row,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

PENDING = "pending"
FIRED = "fired"
CANCELLED = "cancelled"
FAILED = "failed"
STATUSES = (PENDING, FIRED, CANCELLED, FAILED)


def timers_table(metadata: MetaData) -> Table:
    """Defines `<schema>.timers` on a service's MetaData."""
    table = Table(
        "timers",
        metadata,
        Column("id", Uuid, primary_key=True, default=uuid4),
        # kind picks the handler; key names the thing it is about ("<complaint id>:first_response").
        Column("kind", Text, nullable=False),
        Column("key", Text, nullable=False),
        # When the worker should next fire it: the deadline, later pushed back by retries.
        Column("due_at", DateTime(timezone=True), nullable=False),
        Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("status", Text, nullable=False, server_default=text("'pending'")),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("fired_at", DateTime(timezone=True), nullable=True),
        CheckConstraint("status IN ('pending', 'fired', 'cancelled', 'failed')", name="status"),
    )
    # The worker's claim query reads only this index: pending rows in due order.
    Index("ix_timers_pending_due_at", table.c.due_at, postgresql_where=text("status = 'pending'"))
    # One pending timer per (kind, key): scheduling again reschedules it. Fired, cancelled
    # and failed rows stay beside a new pending one as history.
    Index(
        "uq_timers_pending_kind_key",
        table.c.kind,
        table.c.key,
        unique=True,
        postgresql_where=text("status = 'pending'"),
    )
    return table


@dataclass(frozen=True)
class Timer:
    """A due timer as its handler sees it."""

    id: UUID
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    # Tries before this one (each failed); 0 on the first firing.
    attempts: int
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> "Timer":
        """Builds a Timer from a selected timers row."""
        return cls(
            id=row.id,
            kind=row.kind,
            key=row.key,
            due_at=row.due_at,
            payload=dict(row.payload or {}),
            attempts=row.attempts,
            created_at=row.created_at,
        )
