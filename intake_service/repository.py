"""All SQL of the intake service."""

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Executable,
    Integer,
    Text,
    Uuid,
    and_,
    bindparam,
    column,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from intake_service.models import (
    account_flags,
    complaints,
    erasures,
    evidence,
    idempotency_keys,
    timeline,
)
from shared.db.statements import execute, insert_row

# Built once: SQLAlchemy compiles each a single time, asyncpg prepares it once per connection.
# The complaint and the first step of its timeline go in one statement (one round trip).
_NEW_COMPLAINT = (
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
    .returning(complaints.c.id, complaints.c.complaint_number, complaints.c.received_at)
    .cte("new_complaint")
)
_FIRST_STEP = (
    insert(timeline)
    .from_select(
        ["complaint_id", "at", "code", "summary_zh", "summary_en", "details"],
        select(
            _NEW_COMPLAINT.c.id,
            _NEW_COMPLAINT.c.received_at,
            bindparam("step_code", type_=Text),
            bindparam("step_summary_zh", type_=Text),
            bindparam("step_summary_en", type_=Text),
            bindparam("step_details", type_=timeline.c.details.type),
        ),
    )
    .cte("first_step")
)
_INSERT_COMPLAINT = select(_NEW_COMPLAINT.c.complaint_number).add_cte(_FIRST_STEP)


_AT = DateTime(timezone=True)


def _store_response(body: ColumnElement[Any]) -> ReturningInsert[Any]:
    # The caller's key with its response. A key is taken again only once past its retention;
    # a concurrent request with the same key waits on the key's index entry until the first
    # commits, then finds it taken (nothing returned).
    rows = pg_insert(idempotency_keys).from_select(
        ["caller", "key", "request_fingerprint", "response_status", "response_body", "expires_at"],
        select(
            bindparam("key_caller", type_=Text),
            bindparam("key", type_=Text),
            bindparam("key_fingerprint", type_=Text),
            bindparam("key_status", type_=Integer),
            body,
            bindparam("key_expires_at", type_=_AT),
        ),
    )
    return rows.on_conflict_do_update(
        index_elements=[idempotency_keys.c.caller, idempotency_keys.c.key],
        set_={
            "request_fingerprint": rows.excluded.request_fingerprint,
            "response_status": rows.excluded.response_status,
            "response_body": rows.excluded.response_body,
            "created_at": func.now(),
            "expires_at": rows.excluded.expires_at,
        },
        where=idempotency_keys.c.expires_at < bindparam("key_now", type_=_AT),
    ).returning(idempotency_keys.c.key)


_STORE_IDEMPOTENT_RESPONSE = _store_response(bindparam("key_body", type_=JSONB))
# The new complaint, its first step and the caller's key with the response in one statement
# (a round trip fewer than storing the key after). The response is built before the number
# is taken: the number goes into its body here.
_KEY_WITH_NEW_COMPLAINT = _store_response(
    func.jsonb_set(
        bindparam("key_body", type_=JSONB),
        literal_column("'{complaint_number}'::text[]"),
        func.to_jsonb(_NEW_COMPLAINT.c.complaint_number),
    )
).cte("stored_key")
_INSERT_COMPLAINT_AND_KEY = select(
    _NEW_COMPLAINT.c.complaint_number,
    select(literal_column("1")).select_from(_KEY_WITH_NEW_COMPLAINT).exists().label("key_stored"),
).add_cte(_FIRST_STEP)


@dataclass(frozen=True)
class IdempotentResponse:
    """A caller's Idempotency-Key with the response that answers it, to store with the work."""

    caller: str
    key: str
    fingerprint: str
    status: int
    body: dict[str, Any]
    expires_at: datetime
    now: datetime

    def parameters(self) -> dict[str, Any]:
        """The statements' parameters."""
        return {
            "key_caller": self.caller,
            "key": self.key,
            "key_fingerprint": self.fingerprint,
            "key_status": self.status,
            "key_body": self.body,
            "key_expires_at": self.expires_at,
            "key_now": self.now,
        }


@dataclass(frozen=True)
class InsertedComplaint:
    """A new complaint's number; whether the caller's key was found taken (nothing stored)."""

    number: str
    key_taken: bool


async def insert_complaint(
    session: AsyncSession,
    values: dict[str, Any],
    *,
    period: str,
    first_step: dict[str, Any],
    response: IdempotentResponse | None = None,
) -> InsertedComplaint:
    """Stores a new complaint, its first timeline step and the response to the caller's key.

    The number (YYYYMM-NNNNNN) is taken in the statement and written into the stored
    response's `complaint_number`. A key found taken (`key_taken`) leaves the complaint
    written: the caller must roll the transaction back.
    """
    parameters = {**values, "period": period} | {
        f"step_{name}": value for name, value in first_step.items()
    }
    if response is None:
        result = await execute(session, _INSERT_COMPLAINT, parameters)
        return InsertedComplaint(str(result.scalar_one()), key_taken=False)
    result = await execute(session, _INSERT_COMPLAINT_AND_KEY, parameters | response.parameters())
    row = result.one()
    return InsertedComplaint(str(row.complaint_number), key_taken=not row.key_stored)


_COMPLAINT_BY_ID = select(complaints).where(complaints.c.id == bindparam("complaint_id"))
# The customer's view takes every event of the other services through this lock.
_COMPLAINT_BY_ID_FOR_UPDATE = _COMPLAINT_BY_ID.with_for_update()
# What the customer's view changes, and nothing else: three events a complaint pass through it,
# and the whole row (contact, description, JSON columns) is not worth decoding for them.
_VIEW_STATE_FOR_UPDATE = (
    select(
        complaints.c.id,
        complaints.c.status,
        complaints.c.visible_state,
        complaints.c.state_changed_at,
        complaints.c.next_step,
        complaints.c.next_step_due_at,
    )
    .where(complaints.c.id == bindparam("complaint_id"))
    .with_for_update()
)


async def get_complaint(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """Gets a complaint by its id."""
    result = await execute(session, _COMPLAINT_BY_ID, {"complaint_id": complaint_id})
    return result.first()


async def store_idempotent_response(session: AsyncSession, response: IdempotentResponse) -> bool:
    """Remembers the response to a caller's key; False if the key is taken and not expired.

    A concurrent request with the same key waits here until the first commits, then finds
    the key taken.
    """
    result = await execute(session, _STORE_IDEMPOTENT_RESPONSE, response.parameters())
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


# One customer's submissions are checked for duplicates and the cap one after the other (a
# transaction lock per customer, taken by intake.lock_customer_and_list_open: see migration
# intake_0006); different customers never wait on each other. The account's flags come in
# the same round trip.
_OPEN_COMPLAINTS = (
    func.intake.lock_customer_and_list_open(
        bindparam("customer_id", type_=Text), bindparam("open_states", type_=ARRAY(Text))
    )
    .table_valued(
        column("id", Uuid),
        column("complaint_number", Text),
        column("order_number", Text),
        column("target", Text),
        column("received_at", DateTime(timezone=True)),
    )
    .render_derived(name="open_complaint")
)
_FLAGS = (
    select(func.coalesce(func.array_agg(account_flags.c.flag), literal_column("'{}'::text[]")))
    .where(account_flags.c.customer_id == bindparam("customer_id", type_=Text))
    .scalar_subquery()
)
_LOCK_AND_LIST_OPEN = select(
    _FLAGS.label("flags"),
    select(
        func.coalesce(
            func.jsonb_agg(literal_column("open_complaint")), literal_column("'[]'::jsonb")
        )
    )
    .select_from(_OPEN_COMPLAINTS)
    .scalar_subquery()
    .label("open_complaints"),
)


async def lock_customer_and_list_open(
    session: AsyncSession, *, customer_id: str, open_states: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Serialises one customer's submissions; their open complaints and account flags."""
    result = await execute(
        session, _LOCK_AND_LIST_OPEN, {"customer_id": customer_id, "open_states": open_states}
    )
    row = result.one()
    return list(row.open_complaints), sorted(row.flags)


async def add_timeline_step(session: AsyncSession, values: dict[str, Any]) -> None:
    """Appends one step to a complaint's timeline."""
    await insert_row(session, timeline, values)


async def get_complaint_for_update(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """Gets a complaint and locks it until the transaction ends."""
    result = await execute(session, _COMPLAINT_BY_ID_FOR_UPDATE, {"complaint_id": complaint_id})
    return result.first()


async def get_view_state_for_update(
    session: AsyncSession, *, complaint_id: UUID
) -> Row[Any] | None:
    """Gets the columns of a complaint's customer view, locked until the transaction ends."""
    result = await execute(session, _VIEW_STATE_FOR_UPDATE, {"complaint_id": complaint_id})
    return result.first()


async def get_complaint_by_number(session: AsyncSession, *, number: str) -> Row[Any] | None:
    """Gets a complaint by its number."""
    result = await session.execute(
        select(complaints).where(complaints.c.complaint_number == number)
    )
    return result.first()


async def update_complaint(
    session: AsyncSession, complaint_id: UUID, values: dict[str, Any]
) -> None:
    """Changes a complaint's columns."""
    statement = _update_statement(tuple(sorted(values)))
    await execute(session, statement, {**values, "complaint_id_": complaint_id})


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> Executable:
    # One statement per set of columns changed, built once (the view changes the same four).
    return (
        update(complaints)
        .where(complaints.c.id == bindparam("complaint_id_"))
        .values({name: bindparam(name, type_=complaints.c[name].type) for name in columns})
    )


async def timeline_of(session: AsyncSession, *, complaint_id: UUID) -> list[Row[Any]]:
    """A complaint's timeline, oldest first."""
    result = await session.execute(
        select(timeline)
        .where(timeline.c.complaint_id == complaint_id)
        .order_by(timeline.c.at, timeline.c.id)
    )
    return list(result.all())


async def customer_history(
    session: AsyncSession,
    *,
    customer_id: str,
    storefront_id: str | None,
    merchant_id: str | None,
    visible_state: str | None,
    target: str | None,
    received_from: datetime | None,
    received_to: datetime | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Row[Any]]:
    """A customer's complaints newest first, within the caller's scope, one page past `after`."""
    conditions = [complaints.c.customer_id == customer_id]
    if storefront_id is not None:
        conditions.append(complaints.c.storefront_id == storefront_id)
    if merchant_id is not None:
        conditions.append(complaints.c.merchant_id == merchant_id)
    if visible_state is not None:
        conditions.append(complaints.c.visible_state == visible_state)
    if target is not None:
        conditions.append(complaints.c.target == target)
    if received_from is not None:
        conditions.append(complaints.c.received_at >= received_from)
    if received_to is not None:
        conditions.append(complaints.c.received_at < received_to)
    if after is not None:
        conditions.append(tuple_(complaints.c.received_at, complaints.c.id) < tuple_(*after))
    result = await session.execute(
        select(complaints)
        .where(and_(*conditions))
        .order_by(complaints.c.received_at.desc(), complaints.c.id.desc())
        .limit(limit)
    )
    return list(result.all())


async def complaints_of_customer_for_update(
    session: AsyncSession, *, customer_id: str, storefront_id: str | None
) -> list[Row[Any]]:
    """Every complaint of a customer (within a storefront when given), locked for erasure."""
    conditions = [complaints.c.customer_id == customer_id]
    if storefront_id is not None:
        conditions.append(complaints.c.storefront_id == storefront_id)
    result = await session.execute(
        select(complaints)
        .where(and_(*conditions))
        .order_by(complaints.c.received_at)
        .with_for_update()
    )
    return list(result.all())


async def redact_timeline(session: AsyncSession, *, complaint_ids: list[UUID]) -> None:
    """Drops the details of timeline steps that quote the customer (e.g. a repeated submission)."""
    await session.execute(
        update(timeline)
        .where(
            timeline.c.complaint_id.in_(complaint_ids),
            or_(timeline.c.details.has_key("description"), timeline.c.details.has_key("note")),
        )
        .values(details=func.jsonb_build_object("redacted", True))
    )


async def record_erasure(session: AsyncSession, values: dict[str, Any]) -> None:
    """Records that an erasure was carried out."""
    await session.execute(insert(erasures).values(values))


async def set_account_flag(session: AsyncSession, values: dict[str, Any]) -> None:
    """Flags an account (or updates the flag's reason)."""
    statement = pg_insert(account_flags).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[account_flags.c.customer_id, account_flags.c.flag],
            set_={
                "reason": statement.excluded.reason,
                "flagged_at": statement.excluded.flagged_at,
                "flagged_by": statement.excluded.flagged_by,
            },
        )
    )


async def remove_account_flag(session: AsyncSession, *, customer_id: str, flag: str) -> bool:
    """Removes a flag; False if the account did not carry it."""
    result = await session.execute(
        delete(account_flags).where(
            account_flags.c.customer_id == customer_id, account_flags.c.flag == flag
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_account_flags(session: AsyncSession, *, customer_id: str) -> list[Row[Any]]:
    """The flags on a customer's account, with their reasons."""
    result = await session.execute(
        select(account_flags)
        .where(account_flags.c.customer_id == customer_id)
        .order_by(account_flags.c.flag)
    )
    return list(result.all())


# --- Evidence ----------------------------------------------------------------------------


async def insert_evidence(session: AsyncSession, values: dict[str, Any]) -> None:
    """Stores an uploaded file's row."""
    await session.execute(insert(evidence).values(values))


async def count_unattached_evidence(
    session: AsyncSession, *, storefront_id: str, customer_id: str
) -> int:
    """How many uploads of one storefront for one customer no complaint has taken yet."""
    result = await session.execute(
        select(func.count())
        .select_from(evidence)
        .where(
            evidence.c.customer_id == customer_id,
            evidence.c.storefront_id == storefront_id,
            evidence.c.complaint_id.is_(None),
            evidence.c.erased_at.is_(None),
        )
    )
    return int(result.scalar_one())


async def get_evidence(session: AsyncSession, *, evidence_id: UUID) -> Row[Any] | None:
    """An evidence row with the merchant of the complaint it is attached to (if any)."""
    result = await session.execute(
        select(evidence, complaints.c.merchant_id)
        .select_from(evidence.outerjoin(complaints, complaints.c.id == evidence.c.complaint_id))
        .where(evidence.c.id == evidence_id)
    )
    return result.first()


async def lock_evidence(session: AsyncSession, *, evidence_ids: Sequence[UUID]) -> list[Row[Any]]:
    """Evidence rows by id, locked until the transaction ends (attaching them is decided)."""
    if not evidence_ids:
        return []
    result = await session.execute(
        select(evidence)
        .where(evidence.c.id.in_(evidence_ids))
        .order_by(evidence.c.id)  # one lock order: two requests never deadlock
        .with_for_update()
    )
    return list(result.all())


async def attach_evidence(
    session: AsyncSession, *, complaint_id: UUID, evidence_ids: Sequence[UUID]
) -> None:
    """Attaches uploaded files (locked by `lock_evidence`) to a complaint."""
    if evidence_ids:
        await session.execute(
            update(evidence)
            .where(evidence.c.id.in_(evidence_ids))
            .values(complaint_id=complaint_id)
        )


# Read for every complaint received (its event lists the evidence): built once.
_LIST_COMPLAINT_EVIDENCE = (
    select(evidence)
    .where(evidence.c.complaint_id == bindparam("complaint_id", type_=evidence.c.complaint_id.type))
    .order_by(evidence.c.uploaded_at, evidence.c.id)
)


async def list_complaint_evidence(session: AsyncSession, *, complaint_id: UUID) -> list[Row[Any]]:
    """A complaint's evidence, in upload order."""
    result = await execute(session, _LIST_COMPLAINT_EVIDENCE, {"complaint_id": complaint_id})
    return list(result.all())


async def lock_unattached_evidence_before(
    session: AsyncSession, *, before: datetime, limit: int
) -> list[Row[Any]]:
    """Uploads no complaint took, older than `before`; rows locked elsewhere are skipped."""
    result = await session.execute(
        select(evidence)
        .where(evidence.c.complaint_id.is_(None), evidence.c.uploaded_at < before)
        .order_by(evidence.c.uploaded_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(result.all())


async def delete_evidence(session: AsyncSession, *, evidence_ids: Sequence[UUID]) -> int:
    """Deletes evidence rows."""
    if not evidence_ids:
        return 0
    result = await session.execute(delete(evidence).where(evidence.c.id.in_(evidence_ids)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def lock_customer_evidence(session: AsyncSession, *, customer_id: str) -> list[Row[Any]]:
    """A customer's evidence whose content is not erased yet, locked."""
    result = await session.execute(
        select(evidence)
        .where(evidence.c.customer_id == customer_id, evidence.c.erased_at.is_(None))
        .order_by(evidence.c.id)
        .with_for_update()
    )
    return list(result.all())


async def mark_evidence_erased(
    session: AsyncSession, *, evidence_ids: Sequence[UUID], erased_at: datetime
) -> None:
    """Records that the content is gone; the file name goes too (it may name the customer)."""
    if evidence_ids:
        await session.execute(
            update(evidence)
            .where(evidence.c.id.in_(evidence_ids))
            .values(erased_at=erased_at, original_filename=None)
        )
