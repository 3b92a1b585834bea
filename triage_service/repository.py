"""All SQL of the triage service."""

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Executable,
    Integer,
    Text,
    bindparam,
    case,
    cast,
    func,
    null,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.statements import execute, insert_row
from shared.timers import PENDING
from triage_service.domain.groups import GroupCount
from triage_service.models import SCHEMA, corrections, erasures, timers, triages

# The pseudonym of a complaint whose customer was already erased (a replay), else NULL.
_ERASED_CUSTOMER = (
    select(erasures.c.customer_pseudonym)
    .where(erasures.c.complaint_id == bindparam("complaint_id"))
    .scalar_subquery()
)
_ERASED = (
    select(erasures.c.complaint_id)
    .where(erasures.c.complaint_id == bindparam("complaint_id"))
    .exists()
)
# Advisory locks of group complaints live in their own key space (the two-key form), apart
# from the outbox relay's single-key lock.
GROUP_LOCK_CLASS = 7_402


@dataclass(frozen=True)
class StoredTriage:
    """One complaint's triage as stored."""

    complaint_id: UUID
    complaint_number: str
    merchant_id: str
    customer_id: str
    category: str
    priority: str
    team: str
    provisional: bool
    reason: str
    received_at: datetime
    first_response_due_at: datetime | None
    triaged_at: datetime
    correlation_id: str
    subcategory: str | None
    confidence: float | None
    manual_review: bool
    responsibility: str | None
    reasons: list[str]
    signals: list[str]
    classifier_version: str | None
    description: str | None
    target: str | None
    channel: str | None
    demands: list[str]
    skus: list[str]
    group_key: str | None
    resolution_due_at: datetime | None
    pauses: list[list[str | None]]
    stopped_at: datetime | None
    stop_reason: str | None
    first_response_warned_at: datetime | None
    first_response_breached_at: datetime | None
    resolution_warned_at: datetime | None
    resolution_breached_at: datetime | None
    escalation_level: int
    first_responded_at: datetime | None
    retriaged_at: datetime | None
    retriaged_by: str | None
    retriage_reason: str | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> "StoredTriage":
        """Builds the record from a selected triages row."""
        values = row._mapping
        return cls(**{name: values[name] for name in _TRIAGE_FIELDS})


_TRIAGE_FIELDS = tuple(field.name for field in fields(StoredTriage))


@dataclass(frozen=True)
class StoredCorrection:
    """An agent's correction, as the classifier learns from it."""

    description: str
    target: str | None
    channel: str | None
    demands: list[str]
    subcategory: str


@dataclass(frozen=True)
class ComplaintCounts:
    """What the priority rules count around one complaint."""

    groups: list[GroupCount]
    previous_complaints: int


@functools.cache
def _insert_triage_statement(columns: tuple[str, ...]) -> Executable:
    # Built once per column set; the erasure lookup rides inside the INSERT, one round trip.
    values: dict[str, Any] = {name: bindparam(name, type_=triages.c[name].type) for name in columns}
    values["customer_id"] = func.coalesce(_ERASED_CUSTOMER, values["customer_id"])
    if "description" in values:
        # A replayed complaint.received must not bring an erased customer's words back.
        values["description"] = case((_ERASED, null()), else_=values["description"])
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


async def erase_customer_words(session: AsyncSession, *, complaint_id: UUID) -> None:
    """Removes the customer's own words from a complaint's triage and its corrections."""
    await session.execute(
        update(triages).where(triages.c.complaint_id == complaint_id).values(description=None)
    )
    await session.execute(
        update(corrections)
        .where(corrections.c.complaint_id == complaint_id)
        .values(description=None)
    )


async def get_triage(session: AsyncSession, *, complaint_id: UUID) -> StoredTriage | None:
    """Gets the triage of a complaint."""
    result = await session.execute(select(triages).where(triages.c.complaint_id == complaint_id))
    row = result.first()
    return StoredTriage.from_row(row) if row is not None else None


async def lock_triage(
    session: AsyncSession, *, complaint_id: UUID, timer_kind: str
) -> StoredTriage | None:
    """Gets a complaint's triage locked until the transaction ends, its SLA timer first.

    The timer worker locks a timer and then its complaint; taking them in the same order here
    keeps a re-triage or a pause from deadlocking with a firing timer.
    """
    await session.execute(
        select(timers.c.id)
        .where(
            timers.c.kind == timer_kind,
            timers.c.key == str(complaint_id),
            timers.c.status == PENDING,
        )
        .with_for_update()
    )
    result = await session.execute(
        select(triages).where(triages.c.complaint_id == complaint_id).with_for_update()
    )
    row = result.first()
    return StoredTriage.from_row(row) if row is not None else None


async def update_triage(
    session: AsyncSession, *, complaint_id: UUID, values: dict[str, Any]
) -> None:
    """Changes a complaint's triage."""
    await session.execute(
        update(triages).where(triages.c.complaint_id == complaint_id).values(**values)
    )


_LOCK_GROUPS = text(
    "SELECT pg_advisory_xact_lock(:lock_class, hashtext(group_key)) "
    "FROM (SELECT unnest(:group_keys) AS group_key ORDER BY 1) AS sorted_keys"
).bindparams(bindparam("lock_class", type_=Integer), bindparam("group_keys", type_=ARRAY(Text)))


async def lock_groups(session: AsyncSession, *, group_keys: Sequence[str]) -> None:
    """Serialises complaints of the same merchant or SKU until the transaction ends.

    Without it, two members of a group triaged at once would each count the other out and
    the group would never be seen. Keys are locked in sorted order, so nobody deadlocks.
    """
    await execute(
        session, _LOCK_GROUPS, {"lock_class": GROUP_LOCK_CLASS, "group_keys": list(group_keys)}
    )


_COUNTS = text(
    f"""
    SELECT 'merchant:' || :merchant_id AS group_key,
           count(DISTINCT customer_id) FILTER (WHERE customer_id <> :customer_id) AS others
      FROM {SCHEMA}.triages
     WHERE merchant_id = :merchant_id AND complaint_id <> :complaint_id
       AND received_at BETWEEN :since AND :until
    UNION ALL
    SELECT 'sku:' || sku,
           count(DISTINCT t.customer_id) FILTER (WHERE t.customer_id <> :customer_id)
      FROM {SCHEMA}.triages AS t CROSS JOIN LATERAL unnest(t.skus) AS sku
     WHERE t.skus && :skus AND sku = ANY(:skus) AND t.complaint_id <> :complaint_id
       AND t.received_at BETWEEN :since AND :until
     GROUP BY sku
    UNION ALL
    SELECT 'customer', count(*)
      FROM {SCHEMA}.triages
     WHERE customer_id = :customer_id AND complaint_id <> :complaint_id
       AND received_at >= :repeat_since AND received_at < :received_at
    """
).bindparams(bindparam("skus", type_=ARRAY(Text)))


async def count_around(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    merchant_id: str,
    customer_id: str,
    skus: Sequence[str],
    received_at: datetime,
    since: datetime,
    until: datetime,
    repeat_since: datetime,
) -> ComplaintCounts:
    """Customers per merchant and SKU group (this one included) and the customer's earlier ones."""
    result = await execute(
        session,
        _COUNTS,
        {
            "complaint_id": complaint_id,
            "merchant_id": merchant_id,
            "customer_id": customer_id,
            "skus": list(skus),
            "received_at": received_at,
            "since": since,
            "until": until,
            "repeat_since": repeat_since,
        },
    )
    groups: list[GroupCount] = []
    previous = 0
    for row in result.mappings():
        key, count = row["group_key"], row["others"]
        if key == "customer":
            previous = int(count)
        else:
            groups.append(GroupCount(key=str(key), customers=int(count) + 1))
    return ComplaintCounts(groups=groups, previous_complaints=previous)


async def unlinked_group_members(
    session: AsyncSession,
    *,
    group_key: str,
    complaint_id: UUID,
    since: datetime,
    until: datetime,
) -> list[UUID]:
    """Open complaints of a group received within the window and not linked to any group yet."""
    kind, _, value = group_key.partition(":")
    matches = (
        triages.c.merchant_id == value
        if kind == "merchant"
        else triages.c.skus.contains(cast([value], ARRAY(Text)))
    )
    result = await session.execute(
        select(triages.c.complaint_id)
        .where(
            matches,
            triages.c.complaint_id != complaint_id,
            triages.c.group_key.is_(None),
            triages.c.stopped_at.is_(None),
            triages.c.received_at.between(since, until),
        )
        .order_by(triages.c.complaint_id)  # one lock order
    )
    return list(result.scalars())


async def group_members(session: AsyncSession, *, group_key: str) -> list[UUID]:
    """Every complaint linked under a group key."""
    result = await session.execute(
        select(triages.c.complaint_id)
        .where(triages.c.group_key == group_key)
        .order_by(triages.c.received_at)
    )
    return list(result.scalars())


async def insert_correction(session: AsyncSession, values: dict[str, Any]) -> None:
    """Records an agent's re-triage."""
    await insert_row(session, corrections, values)


async def corrections_for_training(session: AsyncSession) -> list[StoredCorrection]:
    """Every correction that names a tag and still has the customer's words, oldest first."""
    result = await session.execute(
        select(
            corrections.c.description,
            corrections.c.target,
            corrections.c.channel,
            corrections.c.demands,
            corrections.c.subcategory,
        )
        .where(
            corrections.c.teaches_classifier,
            corrections.c.description.is_not(None),
            corrections.c.subcategory.is_not(None),
        )
        .order_by(corrections.c.corrected_at, corrections.c.id)
    )
    return [
        StoredCorrection(
            description=row.description,
            target=row.target,
            channel=row.channel,
            demands=list(row.demands),
            subcategory=row.subcategory,
        )
        for row in result
    ]


def _open_queue_order() -> tuple[Any, ...]:
    # Soonest deadline first; paused complaints (no deadline) last.
    return (
        triages.c.first_response_due_at.asc().nulls_last(),
        triages.c.received_at,
        triages.c.complaint_id,
    )


async def team_queue(session: AsyncSession, *, team: str, limit: int) -> list[StoredTriage]:
    """A team's open complaints, soonest deadline first."""
    result = await session.execute(
        select(triages)
        .where(triages.c.team == team, triages.c.stopped_at.is_(None))
        .order_by(*_open_queue_order())
        .limit(limit)
    )
    return [StoredTriage.from_row(row) for row in result]


async def manual_triage_queue(session: AsyncSession, *, limit: int) -> list[StoredTriage]:
    """Open complaints the classifier was unsure of and no person has triaged yet."""
    result = await session.execute(
        select(triages)
        .where(
            triages.c.manual_review,
            triages.c.provisional,
            triages.c.stopped_at.is_(None),
        )
        .order_by(*_open_queue_order())
        .limit(limit)
    )
    return [StoredTriage.from_row(row) for row in result]
