"""All SQL of the triage service."""

from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.statements import insert_row
from triage_service.models import triages


async def insert_triage(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Stores a triage; False if the complaint was already triaged."""
    result = await insert_row(
        session, triages, values, skip_on_conflict=True, returning="complaint_id"
    )
    return result.first() is not None


async def get_triage(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """Gets the triage of a complaint."""
    result = await session.execute(select(triages).where(triages.c.complaint_id == complaint_id))
    return result.first()
