"""Retention: published outbox rows and old inbox rows are deleted so tables stay small."""

from datetime import datetime, timedelta

from sqlalchemy import Table, delete
from sqlalchemy.ext.asyncio import AsyncSession


async def purge_published_outbox(
    session: AsyncSession, table: Table, *, now: datetime, keep: timedelta
) -> int:
    """Deletes outbox rows published longer ago than `keep` (never unpublished ones)."""
    result = await session.execute(
        delete(table).where(table.c.published_at.is_not(None), table.c.published_at < now - keep)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def purge_inbox(
    session: AsyncSession, table: Table, *, now: datetime, keep: timedelta
) -> int:
    """Deletes inbox rows older than `keep`: longer than any redelivery can come late."""
    result = await session.execute(delete(table).where(table.c.processed_at < now - keep))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
