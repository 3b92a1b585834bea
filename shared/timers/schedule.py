"""Scheduling and cancelling timers inside the caller's transaction."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Table, delete, func, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import as_utc
from shared.timers.table import CANCELLED, FIRED, PENDING, Timer


async def schedule(
    session: AsyncSession,
    table: Table,
    *,
    kind: str,
    key: str,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
) -> UUID:
    """Schedules a timer with the state change, or reschedules the pending one with that key.

    Nothing is committed here: a rolled-back state change leaves no timer behind. Returns
    the id of the pending timer (the existing one when rescheduling).
    """
    statement = insert(table).values(
        id=uuid4(),
        kind=kind,
        key=key,
        due_at=as_utc(due_at),
        payload=payload or {},
        status=PENDING,
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[table.c.kind, table.c.key],
        # Literal, not a bound parameter: Postgres matches the partial index by its predicate.
        index_where=text("status = 'pending'"),
        # A reschedule is a new intention: earlier failures no longer count against it.
        set_={
            "due_at": statement.excluded.due_at,
            "payload": statement.excluded.payload,
            "attempts": 0,
            "last_error": None,
        },
    ).returning(table.c.id)
    timer_id: UUID = (await session.execute(upsert)).scalar_one()
    return timer_id


async def schedule_again(
    session: AsyncSession,
    table: Table,
    timer: Timer,
    *,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
) -> UUID:
    """From the handler of `timer`: schedules its kind and key again, as a row of its own.

    The firing timer is still the pending row of its (kind, key), so `schedule` would only
    move it, and the worker would then mark it fired: it is marked fired here first. The next
    timer commits with the handler's effects, or vanishes with them if the handler fails.
    """
    await session.execute(
        update(table).where(table.c.id == timer.id).values(status=FIRED, fired_at=func.now())
    )
    return await schedule(
        session,
        table,
        kind=timer.kind,
        key=timer.key,
        due_at=due_at,
        payload=timer.payload if payload is None else payload,
    )


async def cancel(session: AsyncSession, table: Table, *, kind: str, key: str) -> bool:
    """Cancels the pending timer (kind, key); False when none was pending (or it already fired).

    A worker firing it right now holds its row lock, so this waits for that firing and then
    reports False: the caller learns the timer's effects happened.
    """
    result = await session.execute(
        update(table)
        .where(table.c.kind == kind, table.c.key == key, table.c.status == PENDING)
        .values(status=CANCELLED)
        .returning(table.c.id)
    )
    return result.first() is not None


async def purge_finished_timers(
    session: AsyncSession, table: Table, *, now: datetime, keep: timedelta
) -> int:
    """Deletes fired and cancelled timers older than `keep`; failed ones stay until handled."""
    finished_at = func.coalesce(table.c.fired_at, table.c.created_at)
    result = await session.execute(
        delete(table).where(table.c.status.in_([FIRED, CANCELLED]), finished_at < now - keep)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
