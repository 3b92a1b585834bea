"""All SQL of the intake service."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Text, bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from intake_service.models import complaints, idempotency_keys
from shared.db.statements import execute

# Built once: SQLAlchemy compiles each a single time, asyncpg prepares it once per connection.
_INSERT_COMPLAINT = (
    insert(complaints)
    .values(
        {
            column.name: bindparam(column.name, type_=column.type)
            for column in complaints.c
            if column.name != "complaint_number"
        }
        # The number is taken inside the INSERT: no extra round trip, no lock held.
        | {"complaint_number": func.intake.next_complaint_number(bindparam("period", type_=Text))}
    )
    .returning(complaints.c.complaint_number)
)

_STORE_IDEMPOTENT_RESPONSE = (
    pg_insert(idempotency_keys)
    .values(
        caller=bindparam("caller"),
        key=bindparam("key"),
        request_fingerprint=bindparam("fingerprint"),
        response_status=bindparam("status"),
        response_body=bindparam("body", type_=idempotency_keys.c.response_body.type),
        expires_at=bindparam("expires_at"),
    )
    .on_conflict_do_update(
        index_elements=[idempotency_keys.c.caller, idempotency_keys.c.key],
        set_={
            "request_fingerprint": bindparam("fingerprint"),
            "response_status": bindparam("status"),
            "response_body": bindparam("body", type_=idempotency_keys.c.response_body.type),
            "created_at": func.now(),
            "expires_at": bindparam("expires_at"),
        },
        # Only a key past its retention may be taken again.
        where=idempotency_keys.c.expires_at < bindparam("now"),
    )
    .returning(idempotency_keys.c.key)
)


async def insert_complaint(session: AsyncSession, values: dict[str, Any], *, period: str) -> str:
    """Stores a new complaint and returns the number it was given (YYYYMM-NNNNNN)."""
    result = await execute(session, _INSERT_COMPLAINT, {**values, "period": period})
    return str(result.scalar_one())


async def get_complaint(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """Gets a complaint by its id."""
    result = await session.execute(select(complaints).where(complaints.c.id == complaint_id))
    return result.first()


async def store_idempotent_response(
    session: AsyncSession,
    *,
    caller: str,
    key: str,
    fingerprint: str,
    status: int,
    body: dict[str, Any],
    expires_at: datetime,
    now: datetime,
) -> bool:
    """Remembers the response to a caller's key; False if the key is taken and not expired.

    A concurrent request with the same key waits here until the first commits, then finds
    the key taken.
    """
    result = await execute(
        session,
        _STORE_IDEMPOTENT_RESPONSE,
        {
            "caller": caller,
            "key": key,
            "fingerprint": fingerprint,
            "status": status,
            "body": body,
            "expires_at": expires_at,
            "now": now,
        },
    )
    return result.first() is not None


async def get_idempotency_record(
    session: AsyncSession, *, caller: str, key: str
) -> Row[Any] | None:
    """Gets what was stored for a caller's key."""
    result = await session.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.caller == caller, idempotency_keys.c.key == key
        )
    )
    return result.first()


async def purge_expired_idempotency_keys(session: AsyncSession, *, now: datetime) -> int:
    """Deletes keys past their retention."""
    result = await session.execute(
        delete(idempotency_keys).where(idempotency_keys.c.expires_at < now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
