"""All SQL of the notification service."""

import functools
from typing import Any
from uuid import UUID

from sqlalchemy import Executable, bindparam, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.models import erasures, notifications, recipients
from shared.db.statements import execute, insert_row

_LOCK_COMPLAINT = select(func.pg_advisory_xact_lock(func.hashtext(bindparam("key"))))
_GET_RECIPIENT = select(recipients).where(recipients.c.complaint_id == bindparam("complaint_id"))
_NOT_ERASED = ~exists().where(erasures.c.complaint_id == bindparam("complaint_id"))


@functools.cache
def _insert_recipient_statement(columns: tuple[str, ...]) -> Executable:
    # Built once per column set; the erasure check rides inside the INSERT, one round trip.
    values = [bindparam(name, type_=recipients.c[name].type) for name in columns]
    return (
        insert(recipients)
        .from_select(columns, select(*values).where(_NOT_ERASED))
        .on_conflict_do_nothing()
        .returning(recipients.c.complaint_id)
    )


async def lock_complaint(session: AsyncSession, *, complaint_id: UUID) -> None:
    """Serialises this transaction with others about the same complaint (any replica)."""
    await execute(session, _LOCK_COMPLAINT, {"key": str(complaint_id)})


async def insert_recipient(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Stores a recipient; False if already known or its customer was erased."""
    statement = _insert_recipient_statement(tuple(sorted(values)))
    result = await execute(session, statement, values)
    return result.first() is not None


async def insert_erasure(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Records that a complaint's customer was erased; False if it already was."""
    result = await insert_row(
        session, erasures, values, skip_on_conflict=True, returning="complaint_id"
    )
    return result.first() is not None


async def erase_recipient(session: AsyncSession, *, complaint_id: UUID, customer_id: str) -> None:
    """Forgets a recipient's contact and replaces its customer id (a pseudonym)."""
    await session.execute(
        update(recipients)
        .where(recipients.c.complaint_id == complaint_id)
        .values(sealed_contact=None, customer_id=customer_id)
    )


async def get_recipient(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """Gets the recipient of a complaint's notifications."""
    result = await execute(session, _GET_RECIPIENT, {"complaint_id": complaint_id})
    return result.first()


async def insert_notification(session: AsyncSession, values: dict[str, Any]) -> None:
    """Records a notification (a duplicate kind per complaint is an integrity error)."""
    await insert_row(session, notifications, values)


async def list_notifications(
    session: AsyncSession, *, complaint_id: UUID, status: str | None = None
) -> list[Row[Any]]:
    """Lists a complaint's notifications, oldest first."""
    statement = select(notifications).where(notifications.c.complaint_id == complaint_id)
    if status is not None:
        statement = statement.where(notifications.c.status == status)
    result = await session.execute(statement.order_by(notifications.c.recorded_at))
    return list(result.all())


async def set_notification_channel(
    session: AsyncSession, *, notification_id: UUID, channel: str, status: str
) -> None:
    """Fills in the channel of a notification that waited for the contact."""
    await session.execute(
        update(notifications)
        .where(notifications.c.id == notification_id)
        .values(channel=channel, status=status, updated_at=func.now())
    )
