"""All SQL of the notification service."""

import functools
import weakref
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Executable, and_, bindparam, delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import SessionTransaction

from notification_service.models import (
    cases,
    customer_preferences,
    delivery_attempts,
    erasures,
    messages,
    notifications,
    parcels,
    progress_updates,
    recipients,
    staff_contacts,
    surveys,
    webhook_endpoints,
)
from shared.db.statements import execute, insert_row

# The complaint locks each open transaction holds (forgotten with the transaction object).
_LOCKS_HELD: "weakref.WeakKeyDictionary[SessionTransaction, set[UUID]]" = (
    weakref.WeakKeyDictionary()
)
_LOCK_COMPLAINT = select(func.pg_advisory_xact_lock(func.hashtext(bindparam("key"))))
_GET_RECIPIENT = select(recipients).where(recipients.c.complaint_id == bindparam("complaint_id"))
_NOT_ERASED = ~exists().where(erasures.c.complaint_id == bindparam("complaint_id"))
_INSERT_MESSAGE = (
    insert(messages)
    .values({column.name: bindparam(column.name, type_=column.type) for column in messages.c})
    .on_conflict_do_nothing(index_elements=[messages.c.delivery_key])
    .returning(messages.c.id)
)
_IS_ERASED = select(erasures.c.complaint_id).where(
    erasures.c.complaint_id == bindparam("complaint_id")
)
_ACTIVE_ENDPOINTS = (
    select(webhook_endpoints)
    .where(
        webhook_endpoints.c.merchant_id == bindparam("merchant_id"),
        webhook_endpoints.c.deleted_at.is_(None),
    )
    .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
)
_GET_ENDPOINT = select(webhook_endpoints).where(webhook_endpoints.c.id == bindparam("endpoint_id"))
_GET_PREFERENCES = select(customer_preferences).where(
    customer_preferences.c.customer_id == bindparam("customer_id")
)
_GET_MESSAGE = select(messages).where(messages.c.id == bindparam("message_id"))
# A recipient with the preferences its customer stated (null if none): one round trip to plan.
_GET_RECIPIENT_AND_PREFERENCES = (
    select(recipients, customer_preferences.c.preferences.label("stated_preferences"))
    .select_from(
        recipients.outerjoin(
            customer_preferences, customer_preferences.c.customer_id == recipients.c.customer_id
        )
    )
    .where(recipients.c.complaint_id == bindparam("complaint_id"))
)
# A message with what sending it needs: for a customer message, the recipient's sealed
# contact and stated preferences (null columns when there is no recipient any more).
_GET_MESSAGE_TO_SEND = (
    select(
        messages,
        recipients.c.complaint_id.label("recipient_complaint_id"),
        recipients.c.sealed_contact.label("recipient_sealed_contact"),
        recipients.c.customer_id.label("recipient_customer_id"),
        recipients.c.preferred_channel.label("recipient_preferred_channel"),
        customer_preferences.c.preferences.label("stated_preferences"),
    )
    .select_from(
        messages.outerjoin(
            recipients,
            and_(
                recipients.c.complaint_id == messages.c.complaint_id,
                messages.c.audience == "customer",
            ),
        ).outerjoin(
            customer_preferences, customer_preferences.c.customer_id == recipients.c.customer_id
        )
    )
    .where(messages.c.id == bindparam("message_id"))
)
_START_ATTEMPT = (
    update(messages)
    .where(messages.c.id == bindparam("message_id"))
    .values(status="sending", attempts=messages.c.attempts + 1, updated_at=bindparam("now"))
    .returning(messages.c.attempts)
)
_WAITING_MESSAGES = select(messages).where(
    messages.c.complaint_id == bindparam("complaint_id"),
    messages.c.status == "awaiting_contact",
)


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


@functools.cache
def _update_message_statement(columns: tuple[str, ...], with_attempt: bool) -> Executable:
    # Built once per column set (bind names differ from the columns', which SET reserves). With
    # an attempt, its INSERT rides along as a data-modifying CTE: one round trip for both.
    statement = (
        update(messages)
        .where(messages.c.id == bindparam("message_id"))
        .values({name: bindparam(f"set_{name}", type_=messages.c[name].type) for name in columns})
    )
    if not with_attempt:
        return statement
    attempt = (
        insert(delivery_attempts)
        .values(
            {
                column.name: bindparam(f"attempt_{column.name}", type_=column.type)
                for column in delivery_attempts.c
            }
        )
        .cte("recorded_attempt")
    )
    return statement.add_cte(attempt)


async def lock_complaint(session: AsyncSession, *, complaint_id: UUID) -> None:
    """Serialises this transaction with others about the same complaint (any replica)."""
    # Held to the end of the transaction: asking again within it (a batch of one complaint's
    # events, an acknowledgement and its message) is a round trip that changes nothing.
    transaction = session.sync_session.get_transaction()
    held = _LOCKS_HELD.setdefault(transaction, set()) if transaction is not None else set()
    if complaint_id in held:
        return
    await execute(session, _LOCK_COMPLAINT, {"key": str(complaint_id)})
    held.add(complaint_id)


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


async def get_recipient_and_preferences(
    session: AsyncSession, *, complaint_id: UUID
) -> Row[Any] | None:
    """Gets a complaint's recipient and its customer's stated preferences, if any."""
    result = await execute(session, _GET_RECIPIENT_AND_PREFERENCES, {"complaint_id": complaint_id})
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


async def insert_message(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Stores a message of the delivery log; False when its delivery key is already there."""
    result = await execute(session, _INSERT_MESSAGE, values)
    return result.first() is not None


async def get_message(session: AsyncSession, *, message_id: UUID) -> Row[Any] | None:
    """Gets one message of the delivery log."""
    result = await execute(session, _GET_MESSAGE, {"message_id": message_id})
    return result.first()


async def start_attempt(session: AsyncSession, *, message_id: UUID, now: datetime) -> int:
    """Marks a message as being sent and counts the attempt; returns its number."""
    result = await execute(session, _START_ATTEMPT, {"message_id": message_id, "now": now})
    attempts: int = result.scalar_one()
    return attempts


async def get_message_to_send(session: AsyncSession, *, message_id: UUID) -> Row[Any] | None:
    """Gets a message with its recipient's sealed contact and stated preferences (customers)."""
    result = await execute(session, _GET_MESSAGE_TO_SEND, {"message_id": message_id})
    return result.first()


async def update_message(session: AsyncSession, *, message_id: UUID, **values: Any) -> None:
    """Changes a message's status, outcome or content."""
    columns = tuple(sorted(values))
    parameters = {f"set_{name}": value for name, value in values.items()}
    await execute(
        session,
        _update_message_statement(columns, False),
        {"message_id": message_id, **parameters},
    )


async def record_attempt(
    session: AsyncSession, *, message_id: UUID, attempt: dict[str, Any], **values: Any
) -> None:
    """Records one attempt (with the provider's answer) and the message's new state together."""
    columns = tuple(sorted(values))
    parameters = {f"set_{name}": value for name, value in values.items()}
    attempt_parameters = {f"attempt_{name}": value for name, value in attempt.items()}
    await execute(
        session,
        _update_message_statement(columns, True),
        {"message_id": message_id, **parameters, **attempt_parameters},
    )


async def list_waiting_messages(session: AsyncSession, *, complaint_id: UUID) -> list[Row[Any]]:
    """The customer messages of a complaint that wait for its contact."""
    result = await execute(session, _WAITING_MESSAGES, {"complaint_id": complaint_id})
    return list(result.all())


async def list_messages(session: AsyncSession, *, complaint_id: UUID) -> list[Row[Any]]:
    """A complaint's delivery log, oldest first."""
    result = await session.execute(
        select(messages)
        .where(messages.c.complaint_id == complaint_id)
        .order_by(messages.c.created_at, messages.c.delivery_key)
    )
    return list(result.all())


async def list_attempts(session: AsyncSession, *, message_id: UUID) -> list[Row[Any]]:
    """A message's attempts, first first."""
    result = await session.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.message_id == message_id)
        .order_by(delivery_attempts.c.attempt)
    )
    return list(result.all())


async def is_erased(session: AsyncSession, *, complaint_id: UUID) -> bool:
    """Whether the complaint's customer was erased."""
    result = await execute(session, _IS_ERASED, {"complaint_id": complaint_id})
    return result.first() is not None


async def insert_endpoint(session: AsyncSession, values: dict[str, Any]) -> None:
    """Stores a merchant's webhook endpoint."""
    await insert_row(session, webhook_endpoints, values)


async def list_endpoints(session: AsyncSession, *, merchant_id: str) -> list[Row[Any]]:
    """A merchant's endpoints that are not deleted, oldest first."""
    result = await execute(session, _ACTIVE_ENDPOINTS, {"merchant_id": merchant_id})
    return list(result.all())


async def get_endpoint(session: AsyncSession, *, endpoint_id: UUID) -> Row[Any] | None:
    """Gets one endpoint, deleted or not."""
    result = await execute(session, _GET_ENDPOINT, {"endpoint_id": endpoint_id})
    return result.first()


async def update_endpoint(session: AsyncSession, *, endpoint_id: UUID, **values: Any) -> None:
    """Changes an endpoint (its secret, or its deletion)."""
    await session.execute(
        update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(**values)
    )


async def reopen_dead_letters(
    session: AsyncSession,
    *,
    now: datetime,
    message_ids: list[UUID] | None,
    merchant_endpoint_ids: list[str] | None,
) -> list[Row[Any]]:
    """Puts dead letters back in line (all, or the given ones); returns them."""
    statement = update(messages).where(messages.c.status == "dead_letter")
    if message_ids is not None:
        statement = statement.where(messages.c.id.in_(message_ids))
    if merchant_endpoint_ids is not None:
        statement = statement.where(
            messages.c.audience == "merchant", messages.c.recipient_id.in_(merchant_endpoint_ids)
        )
    result = await session.execute(
        statement.values(
            status="retrying",
            retry_base=messages.c.attempts,
            reason="replayed from the dead letters",
            send_at=now,
            updated_at=now,
        ).returning(messages)
    )
    return list(result.all())


async def get_preferences(session: AsyncSession, *, customer_id: str) -> Row[Any] | None:
    """A customer's stated preferences, if they stated any."""
    result = await execute(session, _GET_PREFERENCES, {"customer_id": customer_id})
    return result.first()


async def put_preferences(session: AsyncSession, values: dict[str, Any]) -> None:
    """Stores a customer's preferences, replacing earlier ones (the storefront stays)."""
    statement = insert(customer_preferences).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[customer_preferences.c.customer_id],
            set_={
                "preferences": statement.excluded.preferences,
                "updated_at": statement.excluded.updated_at,
                "storefront_id": func.coalesce(
                    customer_preferences.c.storefront_id, statement.excluded.storefront_id
                ),
            },
        )
    )


async def delete_preferences(session: AsyncSession, *, customer_id: str) -> None:
    """Forgets a customer's preferences (erasure)."""
    await session.execute(
        delete(customer_preferences).where(customer_preferences.c.customer_id == customer_id)
    )


async def customer_storefronts(session: AsyncSession, *, customer_id: str) -> set[str]:
    """The storefronts that posted complaints of this customer."""
    result = await session.execute(
        select(recipients.c.storefront_id)
        .where(recipients.c.customer_id == customer_id, recipients.c.storefront_id.is_not(None))
        .distinct()
    )
    return {row.storefront_id for row in result}


async def latest_preferred_channel(session: AsyncSession, *, customer_id: str) -> str | None:
    """The channel the customer named on their latest complaint."""
    result = await session.execute(
        select(recipients.c.preferred_channel)
        .where(recipients.c.customer_id == customer_id)
        .order_by(recipients.c.received_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def insert_case(session: AsyncSession, values: dict[str, Any]) -> None:
    """Remembers a complaint's case (a redelivered case.opened changes nothing)."""
    await insert_row(session, cases, values, skip_on_conflict=True)


async def get_case(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """The case opened for a complaint."""
    result = await session.execute(select(cases).where(cases.c.complaint_id == complaint_id))
    return result.first()


async def insert_survey(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Stores a case's survey; False when the case has one already."""
    result = await insert_row(session, surveys, values, skip_on_conflict=True, returning="case_id")
    return result.first() is not None


async def get_survey(
    session: AsyncSession, *, case_id: UUID, for_update: bool = False
) -> Row[Any] | None:
    """A case's survey (locked for an answer when asked)."""
    statement = select(surveys).where(surveys.c.case_id == case_id)
    if for_update:
        statement = statement.with_for_update()
    result = await session.execute(statement)
    return result.first()


async def update_survey(session: AsyncSession, *, case_id: UUID, **values: Any) -> None:
    """Changes a survey (invited, reminded, answered)."""
    await session.execute(update(surveys).where(surveys.c.case_id == case_id).values(**values))


async def erase_survey_comments(session: AsyncSession, *, complaint_id: UUID) -> None:
    """Forgets the customer's own words in a complaint's survey."""
    await session.execute(
        update(surveys).where(surveys.c.complaint_id == complaint_id).values(comment=None)
    )


async def list_surveys(
    session: AsyncSession, *, merchant_id: str | None, answered: bool | None, limit: int
) -> list[Row[Any]]:
    """Surveys, newest first, optionally of one merchant and answered or not."""
    statement = select(surveys)
    if merchant_id is not None:
        statement = statement.where(surveys.c.merchant_id == merchant_id)
    if answered is not None:
        statement = statement.where(
            surveys.c.answered_at.is_not(None) if answered else surveys.c.answered_at.is_(None)
        )
    result = await session.execute(
        statement.order_by(surveys.c.created_at.desc(), surveys.c.case_id).limit(limit)
    )
    return list(result.all())


async def start_progress(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Starts a complaint's progress updates; False when they were started before."""
    result = await insert_row(
        session, progress_updates, values, skip_on_conflict=True, returning="complaint_id"
    )
    return result.first() is not None


async def get_progress(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """A complaint's progress updates."""
    result = await session.execute(
        select(progress_updates).where(progress_updates.c.complaint_id == complaint_id)
    )
    return result.first()


async def update_progress(session: AsyncSession, *, complaint_id: UUID, **values: Any) -> None:
    """Counts a progress update sent, or stops them."""
    await session.execute(
        update(progress_updates)
        .where(progress_updates.c.complaint_id == complaint_id)
        .values(**values)
    )


async def set_case_assignee(session: AsyncSession, *, complaint_id: UUID, assignee_id: str) -> None:
    """Remembers whom a complaint's case is assigned to now."""
    await session.execute(
        update(cases).where(cases.c.complaint_id == complaint_id).values(assignee_id=assignee_id)
    )


async def put_staff_contact(session: AsyncSession, values: dict[str, Any]) -> None:
    """Stores a staff member's own address, replacing an earlier one."""
    statement = insert(staff_contacts).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[staff_contacts.c.staff_id],
            set_={
                "sealed_email": statement.excluded.sealed_email,
                "updated_by": statement.excluded.updated_by,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )


async def get_staff_contact(session: AsyncSession, *, staff_id: str) -> Row[Any] | None:
    """A staff member's directory entry, if there is one."""
    result = await session.execute(
        select(staff_contacts).where(staff_contacts.c.staff_id == staff_id)
    )
    return result.first()


async def delete_staff_contact(session: AsyncSession, *, staff_id: str) -> bool:
    """Forgets a staff member's address; False when there was none."""
    result = await session.execute(
        delete(staff_contacts)
        .where(staff_contacts.c.staff_id == staff_id)
        .returning(staff_contacts.c.staff_id)
    )
    return result.first() is not None


async def report_parcel(session: AsyncSession, values: dict[str, Any]) -> Row[Any]:
    """Stores a parcel report unless the stored one is newer; returns the parcel as it stands."""
    statement = insert(parcels).values(values)
    newer = statement.on_conflict_do_update(
        index_elements=[parcels.c.complaint_id],
        set_={name: statement.excluded[name] for name in values if name != "complaint_id"},
        where=parcels.c.status_at <= statement.excluded.status_at,
    )
    await session.execute(newer)
    row = await get_parcel(session, complaint_id=values["complaint_id"])
    assert row is not None
    return row


async def get_parcel(session: AsyncSession, *, complaint_id: UUID) -> Row[Any] | None:
    """A complaint's parcel as last reported, if any was."""
    result = await session.execute(select(parcels).where(parcels.c.complaint_id == complaint_id))
    return result.first()
