"""All SQL of the intake service."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from intake_service.models import complaint_number_counters, complaints, idempotency_keys


async def next_complaint_sequence(session: AsyncSession, *, period: str) -> int:
    """Takes the next sequence number of a month; the row lock serialises concurrent takers."""
    statement = (
        pg_insert(complaint_number_counters)
        .values(period=period, last_value=1)
        .on_conflict_do_update(
            index_elements=[complaint_number_counters.c.period],
            set_={"last_value": complaint_number_counters.c.last_value + 1},
        )
        .returning(complaint_number_counters.c.last_value)
    )
    return int((await session.execute(statement)).scalar_one())


async def insert_complaint(session: AsyncSession, values: dict[str, Any]) -> None:
    """Stores a new complaint."""
    await session.execute(insert(complaints).values(**values))


async def get_complaint(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """Gets a complaint by its id."""
    result = await session.execute(select(complaints).where(complaints.c.id == complaint_id))
    return result.first()


async def claim_idempotency_key(
    session: AsyncSession, *, key: str, fingerprint: str, expires_at: datetime
) -> bool:
    """Claims a key for this request; False if another request holds or held it.

    A concurrent request with the same key blocks here until the first commits.
    """
    result = await session.execute(
        pg_insert(idempotency_keys)
        .values(key=key, request_fingerprint=fingerprint, expires_at=expires_at)
        .on_conflict_do_nothing()
        .returning(idempotency_keys.c.key)
    )
    return result.first() is not None


async def get_idempotency_record(session: AsyncSession, *, key: str) -> Row[Any] | None:
    """Gets what was stored for a key."""
    result = await session.execute(
        select(idempotency_keys).where(idempotency_keys.c.key == key).with_for_update()
    )
    return result.first()


async def delete_idempotency_key(session: AsyncSession, *, key: str) -> None:
    """Forgets an expired key so it can be reused."""
    await session.execute(delete(idempotency_keys).where(idempotency_keys.c.key == key))


async def store_idempotent_response(
    session: AsyncSession, *, key: str, status: int, body: dict[str, Any]
) -> None:
    """Remembers the response given to the first request with a key."""
    await session.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.key == key)
        .values(response_status=status, response_body=body)
    )


async def purge_expired_idempotency_keys(session: AsyncSession, *, now: datetime) -> int:
    """Deletes keys past their retention."""
    result = await session.execute(
        delete(idempotency_keys).where(idempotency_keys.c.expires_at < now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
