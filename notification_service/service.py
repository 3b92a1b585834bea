"""Notification rules: who to tell, what, through which channel. Never commits."""

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service import repository
from notification_service.config import Settings
from notification_service.models import outbox
from notification_service.schemas import (
    ComplaintNotificationsView,
    NotificationView,
    RecipientView,
)
from shared.auth import Principal, ensure_visible
from shared.errors import NotFoundError
from shared.events import (
    AcknowledgementRecorded,
    CaseOpened,
    ComplaintReceived,
    CustomerErased,
    EventEnvelope,
    new_event,
)
from shared.pii import customer_pseudonym, mask_email, mask_phone, unseal
from shared.time import utcnow

PRODUCER = "notification_service"
KIND_ACKNOWLEDGEMENT = "acknowledgement"
STATUS_RECORDED = "recorded"
# case.opened can overtake complaint.received (different topics): wait for the contact.
STATUS_AWAITING_CONTACT = "awaiting_contact"


def acknowledgement_text(complaint_number: str, respond_by: datetime) -> str:
    """The acknowledgement message, in the customer's words of the trade."""
    when = respond_by.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"您的投诉 {complaint_number} 已受理，我们将在 {when} 前给您答复。"
        f" Your complaint {complaint_number} is being handled; we will respond by {when}."
    )


async def register_recipient(
    session: AsyncSession, event: EventEnvelope[ComplaintReceived], *, settings: Settings
) -> None:
    """Keeps the (sealed) contact of a new complaint and completes a waiting acknowledgement.

    Nothing is kept for a complaint whose customer was erased (a replay after the erasure).
    """
    complaint = event.payload
    await repository.lock_complaint(session, complaint_id=event.complaint_id)
    stored = await repository.insert_recipient(
        session,
        {
            "complaint_id": event.complaint_id,
            "complaint_number": complaint.complaint_number,
            "customer_id": complaint.customer_id,
            "sealed_contact": complaint.sealed_contact,
            # As intake sent it, even a channel this service does not know yet.
            "preferred_channel": complaint.preferred_contact_channel,
            "received_at": complaint.received_at,
            "storefront_id": complaint.storefront_id,
            "merchant_id": complaint.merchant_id,
        },
    )
    if not stored:
        return  # erased, or already known (its waiting acknowledgements were completed then)
    # Fail now, not at delivery time: raising rolls the stored recipient back.
    unseal(complaint.sealed_contact, settings.pii_keyring)
    waiting = await repository.list_notifications(
        session, complaint_id=event.complaint_id, status=STATUS_AWAITING_CONTACT
    )
    for row in waiting:
        await repository.set_notification_channel(
            session,
            notification_id=row.id,
            channel=complaint.preferred_contact_channel,
            status=STATUS_RECORDED,
        )
        await _emit_acknowledgement(
            session,
            event,
            notification_id=row.id,
            complaint_number=row.complaint_number,
            channel=complaint.preferred_contact_channel,
            respond_by=row.respond_by,
        )


async def erase_customer(session: AsyncSession, event: EventEnvelope[CustomerErased]) -> None:
    """Forgets the customer's contact on this complaint, and keeps it forgotten.

    The recipient row stays (it scopes who may read the complaint's notifications) with no
    contact and a pseudonym for the customer id; the erasure row stops a later or replayed
    complaint.received from storing the contact again. Message bodies are built from the
    complaint number and deadline only, so they hold no contact data to redact.
    """
    erasure = event.payload
    await repository.lock_complaint(session, complaint_id=event.complaint_id)
    await repository.insert_erasure(
        session,
        {
            "complaint_id": event.complaint_id,
            "erased_at": erasure.erased_at,
            "recorded_at": utcnow(),
        },
    )
    await repository.erase_recipient(
        session,
        complaint_id=event.complaint_id,
        customer_id=customer_pseudonym(erasure.customer_id),
    )


async def acknowledge_case(session: AsyncSession, event: EventEnvelope[CaseOpened]) -> None:
    """Records the customer's acknowledgement: received, being handled, answer by when."""
    case = event.payload
    await repository.lock_complaint(session, complaint_id=event.complaint_id)
    recipient = await repository.get_recipient(session, complaint_id=event.complaint_id)
    notification_id = uuid.uuid4()
    now = utcnow()
    # A channel this service does not know yet is kept as given, never a dead letter.
    channel: str | None = recipient.preferred_channel if recipient else None
    await repository.insert_notification(
        session,
        {
            "id": notification_id,
            "complaint_id": event.complaint_id,
            "complaint_number": case.complaint_number,
            "kind": KIND_ACKNOWLEDGEMENT,
            "channel": channel,
            "status": STATUS_RECORDED if channel else STATUS_AWAITING_CONTACT,
            "body": acknowledgement_text(case.complaint_number, case.first_response_due_at),
            "respond_by": case.first_response_due_at,
            "recorded_at": now,
            "updated_at": now,
        },
    )
    if channel is not None:
        await _emit_acknowledgement(
            session,
            event,
            notification_id=notification_id,
            complaint_number=case.complaint_number,
            channel=channel,
            respond_by=case.first_response_due_at,
        )


async def _emit_acknowledgement(
    session: AsyncSession,
    cause: EventEnvelope[Any],
    *,
    notification_id: UUID,
    complaint_number: str,
    channel: str,
    respond_by: datetime,
) -> None:
    await outbox.add(
        session,
        new_event(
            AcknowledgementRecorded(
                notification_id=notification_id,
                complaint_number=complaint_number,
                channel=channel,
                respond_by=respond_by,
                recorded_at=utcnow(),
            ),
            producer=PRODUCER,
            complaint_id=cause.complaint_id,
            correlation_id=cause.correlation_id,
            causation=cause,
        ),
    )


async def get_complaint_notifications(
    session: AsyncSession, *, complaint_id: UUID, settings: Settings, principal: Principal
) -> ComplaintNotificationsView:
    """Gets what the customer was (or will be) told, if the caller's scope covers it.

    Scope comes from the recipient row (the storefront that posted the complaint): until
    the complaint itself has arrived here, only admins see its notifications.
    """
    recipient = await repository.get_recipient(session, complaint_id=complaint_id)
    missing = f"no notifications for complaint {complaint_id}"
    ensure_visible(
        principal,
        missing,
        storefront_id=recipient.storefront_id if recipient else None,
        merchant_id=recipient.merchant_id if recipient else None,
        customer_id=recipient.customer_id if recipient else None,
    )
    rows = await repository.list_notifications(session, complaint_id=complaint_id)
    if recipient is None and not rows:
        raise NotFoundError(missing)
    number = recipient.complaint_number if recipient else rows[0].complaint_number
    return ComplaintNotificationsView(
        complaint_id=complaint_id,
        complaint_number=number,
        recipient=_recipient_view(recipient, settings) if recipient else None,
        notifications=[
            NotificationView(
                notification_id=row.id,
                kind=row.kind,
                channel=row.channel,
                status=row.status,
                body=row.body,
                respond_by=row.respond_by,
                recorded_at=row.recorded_at,
            )
            for row in rows
        ],
    )


def _recipient_view(row: Row[Any], settings: Settings) -> RecipientView:
    # An erased customer's recipient has no contact left to show.
    contact = unseal(row.sealed_contact, settings.pii_keyring) if row.sealed_contact else {}
    return RecipientView(
        customer_id=row.customer_id,
        preferred_channel=row.preferred_channel,
        phone=mask_phone(contact.get("phone")),
        email=mask_email(contact.get("email")),
    )
