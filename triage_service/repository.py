"""All SQL of the triage service."""

import functools
from typing import Any
from uuid import UUID

from sqlalchemy import Executable, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.statements import execute, insert_row
from triage_service.models import erasures, triages

# The pseudonym of a complaint whose customer was already erased (a replay), else NULL.
_ERASED_CUSTOMER = (
    select(erasures.c.customer_pseudonym)
    .where(erasures.c.complaint_id == bindparam("complaint_id"))
    .scalar_subquery()
)


@functools.cache
def _insert_triage_statement(columns: tuple[str, ...]) -> Executable:
    # Built once per column set; the erasure lookup rides inside the INSERT, one round trip.
    values: dict[str, Any] = {name: bindparam(name, type_=triages.c[name].type) for name in columns}
    values["customer_id"] = func.coalesce(_ERASED_CUSTOMER, values["customer_id"])
    return (
        insert(triages)
        .from_select(list(values), select(*values.values()))
        .on_conflict_do_nothing()
        .returning(triages.c.complaint_id)
    )


async def insert_triage(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Stores a triage (under the pseudonym if the customer was erased); False if known."""
    statement = _insert_triage_statement(tuple(sorted(values)))
    result = await execute(session, statement, values)
    return result.first() is not None


async def insert_erasure(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Records that a complaint's customer was erased; False if it already was."""
    result = await insert_row(
        session, erasures, values, skip_on_conflict=True, returning="complaint_id"
    )
    return result.first() is not None


async def pseudonymise_customer(
    session: AsyncSession, *, complaint_id: UUID, customer_pseudonym: str
) -> None:
    """Replaces the customer id on a complaint's triage with its pseudonym."""
    await session.execute(
        update(triages)
        .where(triages.c.complaint_id == complaint_id)
        .values(customer_id=customer_pseudonym)
    )


async def get_triage(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """Gets the triage of a complaint."""
    result = await session.execute(select(triages).where(triages.c.complaint_id == complaint_id))
    return result.first()
