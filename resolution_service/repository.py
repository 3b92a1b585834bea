"""All SQL of the resolution service."""

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import and_, any_, bindparam, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from resolution_service.models import (
    case_timeline,
    cases,
    complaint_facts,
    consents,
    idempotency_keys,
    ledger_entries,
    task_reports,
    users,
)
from shared.db.statements import execute, insert_row

# The event handlers' hot path: one case by complaint, locked for the transition.
_CASE_FOR_UPDATE = (
    select(cases).where(cases.c.complaint_id == bindparam("complaint_id")).with_for_update()
)
_CASE = select(cases).where(cases.c.complaint_id == bindparam("complaint_id"))
_FACTS = select(complaint_facts).where(complaint_facts.c.complaint_id == bindparam("complaint_id"))


async def insert_case(session: AsyncSession, values: dict[str, Any]) -> Row[Any] | None:
    """Opens a case and returns it (ours until commit); None if the complaint has one."""
    result = await insert_row(
        session,
        cases,
        values,
        skip_on_conflict=True,
        conflict_columns=("complaint_id",),
        returning="*",
    )
    return result.first()


async def get_case_by_complaint(
    session: AsyncSession, *, complaint_id: UUID, for_update: bool = False
) -> Row[Any] | None:
    """Gets the case of a complaint (locked for a change when asked)."""
    statement = _CASE_FOR_UPDATE if for_update else _CASE
    result = await execute(session, statement, {"complaint_id": complaint_id})
    return result.first()


async def update_case(session: AsyncSession, *, case_id: UUID, values: dict[str, Any]) -> Row[Any]:
    """Writes a case's new state and facts; returns the row as it now is."""
    result = await session.execute(
        update(cases).where(cases.c.id == case_id).values(**values).returning(*cases.c)
    )
    return result.one()


async def insert_facts(session: AsyncSession, values: dict[str, Any]) -> None:
    """Keeps the complaint's facts from intake (a redelivery changes nothing)."""
    await insert_row(
        session,
        complaint_facts,
        values,
        skip_on_conflict=True,
        conflict_columns=("complaint_id",),
    )


async def get_facts(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """The complaint's facts from intake, if they arrived."""
    return (await execute(session, _FACTS, {"complaint_id": complaint_id})).first()


async def erase_customer(
    session: AsyncSession, *, complaint_id: UUID, pseudonym: str, at: Any
) -> None:
    """Replaces a customer's id on a complaint's facts and consents with its pseudonym."""
    await session.execute(
        update(complaint_facts)
        .where(complaint_facts.c.complaint_id == complaint_id)
        .values(customer_id=pseudonym, erased_at=at)
    )
    case_ids = select(cases.c.id).where(cases.c.complaint_id == complaint_id)
    await session.execute(
        update(consents).where(consents.c.case_id.in_(case_ids)).values(customer_id=pseudonym)
    )


async def least_loaded_agent(
    session: AsyncSession, *, team: str, active_states: Sequence[str]
) -> str | None:
    """The enabled agent of `team` with the fewest active cases (by name on ties)."""
    assignee = literal("agent:").concat(users.c.username)
    load = (
        select(func.count(cases.c.id))
        .where(cases.c.assignee_id == assignee, cases.c.state.in_(active_states))
        .scalar_subquery()
    )
    result = await session.execute(
        select(users.c.username)
        .where(
            users.c.role == "agent",
            users.c.disabled.is_(False),
            literal(team) == any_(users.c.teams),
        )
        .order_by(load, users.c.username)
        .limit(1)
    )
    return result.scalar_one_or_none()


async def staff_member(session: AsyncSession, *, username: str) -> Row[Any] | None:
    """An enabled agent or supervisor by name."""
    result = await session.execute(
        select(users.c.username, users.c.role, users.c.teams).where(
            users.c.username == username,
            users.c.disabled.is_(False),
            users.c.role.in_(("agent", "supervisor")),
        )
    )
    row: Row[Any] | None = result.first()  # type: ignore[assignment]
    return row


async def queue(
    session: AsyncSession,
    *,
    states: Sequence[str],
    team: str | None = None,
    assignee_id: str | None = None,
    merchant_id: str | None = None,
    teams: Sequence[str] | None = None,
    limit: int = 200,
) -> Sequence[Row[Any]]:
    """Cases in some states of a team, an agent, a merchant or teams, most urgent first."""
    conditions: list[ColumnElement[bool]] = [cases.c.state.in_(states)]
    if team is not None:
        conditions.append(cases.c.team == team)
    if assignee_id is not None:
        conditions.append(cases.c.assignee_id == assignee_id)
    if merchant_id is not None:
        conditions.append(cases.c.merchant_id == merchant_id)
    if teams is not None:
        conditions.append(cases.c.team.in_(teams))
    result = await session.execute(
        select(cases)
        .where(and_(*conditions))
        .order_by(cases.c.first_response_due_at, cases.c.opened_at)
        .limit(limit)
    )
    return result.all()


async def add_timeline(session: AsyncSession, values: dict[str, Any]) -> None:
    """Adds one line to a case's timeline."""
    await insert_row(session, case_timeline, values)


async def timeline(session: AsyncSession, *, case_id: UUID) -> Sequence[Row[Any]]:
    """A case's timeline, oldest first."""
    result = await session.execute(
        select(case_timeline)
        .where(case_timeline.c.case_id == case_id)
        .order_by(case_timeline.c.at, case_timeline.c.id)
    )
    return result.all()


async def add_consent(session: AsyncSession, values: dict[str, Any]) -> None:
    """Stores a proof of consent."""
    await insert_row(session, consents, values)


async def latest_consent(session: AsyncSession, *, case_id: UUID) -> Row[Any] | None:
    """The case's latest proof of consent."""
    result = await session.execute(
        select(consents)
        .where(consents.c.case_id == case_id)
        .order_by(consents.c.consented_at.desc())
        .limit(1)
    )
    return result.first()


async def task_reports_of(session: AsyncSession, *, case_id: UUID) -> Sequence[Row[Any]]:
    """Every report on the case's tasks, in order."""
    result = await session.execute(
        select(task_reports).where(task_reports.c.case_id == case_id).order_by(task_reports.c.seq)
    )
    return result.all()


async def add_task_report(session: AsyncSession, values: dict[str, Any]) -> None:
    """Appends a task report (the case row is locked, so `seq` is the next one)."""
    await insert_row(session, task_reports, values)


async def add_ledger_entries(session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
    """Records who pays each cost of an accepted offer."""
    for values in rows:
        await insert_row(session, ledger_entries, values)


async def ledger_totals(session: AsyncSession, *, party: str, party_id: str) -> Sequence[Row[Any]]:
    """Sums of a merchant's or carrier's ledger entries, per currency."""
    result = await session.execute(
        select(
            ledger_entries.c.currency,
            func.sum(ledger_entries.c.amount).label("total"),
            func.count().label("entries"),
        )
        .where(ledger_entries.c.party == party, ledger_entries.c.party_id == party_id)
        .group_by(ledger_entries.c.currency)
        .order_by(ledger_entries.c.currency)
    )
    return result.all()


_CLAIM_KEY = (
    pg_insert(idempotency_keys)
    .values(
        caller=bindparam("caller"),
        key=bindparam("key"),
        request_sha256=bindparam("request_sha256"),
        created_at=bindparam("created_at"),
    )
    .on_conflict_do_nothing(index_elements=[idempotency_keys.c.caller, idempotency_keys.c.key])
    .returning(idempotency_keys.c.key)
)
_KEY = select(idempotency_keys).where(
    idempotency_keys.c.caller == bindparam("caller"), idempotency_keys.c.key == bindparam("key")
)


async def claim_key(
    session: AsyncSession, *, caller: str, key: str, request_sha256: str, at: Any
) -> Row[Any] | None:
    """Claims a caller's key for this request; the earlier record when it was taken.

    A concurrent request with the same key waits on the key's row until the first one
    commits (then finds its record) or rolls back (then claims it).
    """
    claimed = await execute(
        session,
        _CLAIM_KEY,
        {"caller": caller, "key": key, "request_sha256": request_sha256, "created_at": at},
    )
    if claimed.first() is not None:
        return None
    return (await execute(session, _KEY, {"caller": caller, "key": key})).first()


async def store_response(
    session: AsyncSession, *, caller: str, key: str, response: dict[str, Any]
) -> None:
    """Remembers the first response to a caller's key."""
    await session.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.caller == caller, idempotency_keys.c.key == key)
        .values(response=response)
    )


async def purge_keys(session: AsyncSession, *, before: Any) -> int:
    """Deletes keys older than `before`."""
    result = await session.execute(
        delete(idempotency_keys).where(idempotency_keys.c.created_at < before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
