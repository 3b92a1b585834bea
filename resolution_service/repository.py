"""All SQL of the resolution service."""

from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from resolution_service.models import cases
from shared.db.statements import insert_row


async def insert_case(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Opens a case; False if the complaint already has one."""
    result = await insert_row(
        session,
        cases,
        values,
        skip_on_conflict=True,
        conflict_columns=("complaint_id",),
        returning="id",
    )
    return result.first() is not None


async def update_case_triage(
    session: AsyncSession, *, complaint_id: UUID, values: dict[str, Any]
) -> None:
    """Applies a newer triage to an existing case."""
    await session.execute(
        update(cases).where(cases.c.complaint_id == complaint_id).values(**values)
    )


async def get_case_by_complaint(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """Gets the case of a complaint."""
    result = await session.execute(select(cases).where(cases.c.complaint_id == complaint_id))
    return result.first()
