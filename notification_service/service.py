"""Notification rules: who to tell, what, through which channel. Never commits."""

import asyncio
import ipaddress
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from notification_service import repository
from notification_service.channels.base import DeliveryResult, DeliveryStatus, Recipient
from notification_service.channels.registry import (
    NOT_CONFIGURED,
    ChannelSet,
    configured_channels,
)
from notification_service.channels.webhook import generate_secret, webhook_message
from notification_service.config import Settings
from notification_service.domain import contexts
from notification_service.domain.preferences import CustomerPreferences, plan_delivery
from notification_service.domain.redaction import redact_message
from notification_service.domain.retry import after_failure
from notification_service.domain.routing import (
    Audience,
    DeliveryChannel,
    MessageRoute,
    delivery_key,
    load_rules,
)
from notification_service.domain.surveys import (
    SurveyAnswer,
    SurveyScope,
    SurveyTokenExpiredError,
    SurveyTokenInvalidError,
    SurveyTokens,
    invitation_due_at,
    reminder_due_at,
    should_remind,
)
from notification_service.domain.templates import (
    DEFAULT_LOCALE,
    DEFAULT_TIME_ZONE,
    Message,
    TemplateContextError,
    TemplateDefinitionError,
    TemplateNotFoundError,
    TemplateRenderError,
    default_catalog,
)
from notification_service.models import outbox, timers
from notification_service.schemas import (
    ComplaintNotificationsView,
    DeliveryAttemptView,
    MessageView,
    NotificationView,
    ParcelReport,
    ParcelView,
    PreferencesView,
    PreviewRequest,
    PreviewView,
    RecipientView,
    StaffContactPut,
    StaffContactView,
    SurveyList,
    SurveyReceipt,
    SurveyRequest,
    SurveyView,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointView,
)
from shared.auth import Principal, Role, ensure_visible
from shared.clock import default_clock
from shared.errors import (
    ConflictError,
    GoneError,
    NotFoundError,
    ServiceUnavailableError,
    UnprocessableError,
)
from shared.events import (
    AcknowledgementRecorded,
    CaseAssigned,
    CaseOpened,
    CaseRejected,
    CaseRemedyOffered,
    CaseResolved,
    ComplaintInfoRequested,
    ComplaintLinkedDuplicate,
    ComplaintReceived,
    ComplaintRejected,
    ComplaintSlaBreached,
    ComplaintSlaWarning,
    ComplaintTriaged,
    ComplaintWithdrawn,
    CustomerErased,
    EventEnvelope,
    NotificationFailed,
    NotificationSent,
    SurveyCompleted,
    new_event,
)
from shared.pii import customer_pseudonym, mask_email, mask_phone, seal, unseal
from shared.time import utcnow
from shared.timers import Timer, cancel, schedule, schedule_again

PRODUCER = "notification_service"
KIND_ACKNOWLEDGEMENT = "acknowledgement"
STATUS_RECORDED = "recorded"
# case.opened can overtake complaint.received (different topics): wait for the contact.
STATUS_AWAITING_CONTACT = "awaiting_contact"
# Staff messages to a member of the staff directory: `staff:agent:alice`. Team addresses from
# the settings are `<audience>:<team>`.
STAFF_RECIPIENT_PREFIX = "staff:"


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
    stored = await _store_recipient(
        session,
        event,
        settings=settings,
        customer_id=complaint.customer_id,
        sealed_contact=complaint.sealed_contact,
        preferred_channel=complaint.preferred_contact_channel,
        received_at=complaint.received_at,
        storefront_id=complaint.storefront_id,
    )
    if not stored:
        return  # erased, or already known (its waiting acknowledgements were completed then)
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


async def _store_recipient(
    session: AsyncSession,
    event: EventEnvelope[Any],
    *,
    settings: Settings,
    customer_id: str,
    sealed_contact: str,
    preferred_channel: str,
    received_at: datetime,
    storefront_id: str | None = None,
) -> bool:
    """Keeps a complaint's recipient (unless known or erased) and plans what waited for it."""
    # Fail now, not at delivery time: raising rolls the whole event back. The contact is opened
    # only to learn which channels it has an address for; the addresses stay sealed.
    contact = unseal(sealed_contact, settings.pii_keyring)
    stored = await repository.insert_recipient(
        session,
        {
            "complaint_id": event.complaint_id,
            "complaint_number": event.payload.complaint_number,
            "customer_id": customer_id,
            "sealed_contact": sealed_contact,
            # As intake sent it, even a channel this service does not know yet.
            "preferred_channel": preferred_channel,
            "received_at": received_at,
            "storefront_id": storefront_id,
            "merchant_id": event.payload.merchant_id,
            "reachable_channels": reachable_channels(contact),
        },
    )
    if stored:
        waiting = await repository.list_waiting_messages(session, complaint_id=event.complaint_id)
        if waiting:
            recipient = await repository.get_recipient_and_preferences(
                session, complaint_id=event.complaint_id
            )
            assert recipient is not None
            for row in waiting:
                await _plan_customer_message(session, row, recipient, settings=settings)
    return stored


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
    await repository.delete_preferences(session, customer_id=erasure.customer_id)
    await repository.erase_survey_comments(session, complaint_id=event.complaint_id)


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
    log = await repository.list_messages(session, complaint_id=complaint_id)
    if recipient is None and not rows and not log:
        raise NotFoundError(missing)
    number = (
        recipient.complaint_number
        if recipient
        else rows[0].complaint_number
        if rows
        else log[0].complaint_number
    )
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
        messages=[
            MessageView(
                message_id=row.id,
                delivery_key=row.delivery_key,
                message_type=row.message_type,
                audience=row.audience,
                channel=row.channel,
                status=row.status,
                reason=row.reason,
                subject=row.subject,
                body=row.body,
                template=row.template,
                template_version=row.template_version,
                locale=row.locale,
                attempts=[
                    DeliveryAttemptView(
                        attempt=attempt.attempt,
                        status=attempt.status,
                        provider_reference=attempt.provider_reference,
                        provider_response=attempt.provider_response,
                        attempted_at=attempt.attempted_at,
                    )
                    for attempt in await repository.list_attempts(session, message_id=row.id)
                ],
                send_at=row.send_at,
                sent_at=row.sent_at,
                created_at=row.created_at,
            )
            for row in log
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


# --- the delivery log: who hears what, planned with the event, sent on a durable timer ---

DELIVER_TIMER = "notification.deliver"
# A customer message is one per event and complaint, whichever channel the preferences pick:
# its key names the customer's preferred channel, not the one chosen, so a replay with changed
# preferences still finds the message it already stored.
CUSTOMER_CHANNEL_KEY = "preferred"
AWAITING_CONTACT = "awaiting_contact"
QUEUED = "queued"
SENDING = "sending"
RETRYING = "retrying"
SENT = "sent"
FAILED = "failed"
UNCERTAIN = "uncertain"
DEAD_LETTER = "dead_letter"
SKIPPED = "skipped"
# A timer finding its message in one of these sends it (again).
SENDABLE = frozenset({QUEUED, RETRYING, SENDING})
_TEMPLATE_ERRORS = (
    TemplateContextError,
    TemplateDefinitionError,
    TemplateNotFoundError,
    TemplateRenderError,
)
# Where each channel finds its address in the sealed contact.
CONTACT_FIELDS = {
    DeliveryChannel.SMS.value: "phone",
    DeliveryChannel.EMAIL.value: "email",
    DeliveryChannel.APP_PUSH.value: "push_token",
}


class UndeliverableError(Exception):
    """A message that cannot go out whatever is tried: no address any more, no template."""


def reachable_channels(contact: dict[str, Any]) -> list[str]:
    """The channels a contact has an address for (the addresses themselves stay sealed)."""
    return [channel for channel, field in CONTACT_FIELDS.items() if contact.get(field)]


def _receipt(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: ComplaintReceived = event.payload
    promised = timedelta(hours=settings.receipt_first_response_hours)
    return contexts.Receipt(
        complaint_number=payload.complaint_number,
        received_at=payload.received_at,
        respond_by=payload.received_at + promised,
        order_number=payload.order_number,
    )


def _information_request(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: ComplaintInfoRequested = event.payload
    return contexts.InformationRequest(
        complaint_number=payload.complaint_number,
        missing=tuple(
            contexts.MissingInformation(field=item.field, reason=item.reason)
            for item in payload.missing
        ),
        respond_by=payload.respond_by,
    )


def _rejection(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: ComplaintRejected = event.payload
    return contexts.Rejection(
        complaint_number=payload.complaint_number,
        reason_code=payload.reason_code,
        reason=payload.reason,
        alternative=payload.alternative,
        rejected_at=payload.rejected_at,
    )


def _withdrawal(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: ComplaintWithdrawn = event.payload
    return contexts.Withdrawal(
        complaint_number=payload.complaint_number, withdrawn_at=payload.withdrawn_at
    )


def _duplicate(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: ComplaintLinkedDuplicate = event.payload
    return contexts.DuplicateLinked(
        complaint_number=payload.complaint_number, submitted_at=payload.submitted_at
    )


def _case_opened(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: CaseOpened = event.payload
    return contexts.CaseOpenedNotice(
        complaint_number=payload.complaint_number,
        priority=payload.priority,
        first_response_due_at=payload.first_response_due_at,
    )


def _case_assigned(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: CaseAssigned = event.payload
    # The event names the agent and the team; the deadlines are triage's and not carried here.
    return contexts.Assignment(
        complaint_number=payload.complaint_number,
        case_id=payload.case_id,
        agent_name=payload.assignee_id,
    )


def _remedy_offered(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: CaseRemedyOffered = event.payload
    return contexts.RemedyProposal(
        complaint_number=payload.complaint_number,
        remedies=tuple(
            contexts.RemedyOffer(
                type=line.kind,
                amount=contexts.Money(amount=line.amount, currency=line.currency)
                if line.amount
                else None,
                note=line.description,
            )
            for line in payload.remedies
        ),
        respond_by=payload.respond_by,
    )


def _case_rejected(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: CaseRejected = event.payload
    return contexts.CaseRejection(
        complaint_number=payload.complaint_number,
        decided_at=payload.at,
        explanation=payload.reason or "-",
        appeal_until=payload.appeal_window_ends_at,
    )


def _case_resolved(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: CaseResolved = event.payload
    return contexts.Resolution(
        complaint_number=payload.complaint_number,
        resolved_at=payload.resolved_at or payload.at,
        summary=payload.reason,
        appeal_until=payload.appeal_window_ends_at,
    )


def _sla_alert(event: EventEnvelope[Any], settings: Settings) -> contexts.MessageContext:
    payload: ComplaintSlaWarning | ComplaintSlaBreached = event.payload
    return contexts.SlaAlert(
        complaint_number=payload.complaint_number,
        clock=payload.clock,
        due_at=payload.due_at,
        priority=payload.priority,
        team=payload.team,
    )


# What a customer's or staff member's template reads, built from each event this service routes.
MESSAGE_CONTEXTS: dict[str, Callable[[EventEnvelope[Any], Settings], contexts.MessageContext]] = {
    ComplaintReceived.event_type: _receipt,
    ComplaintInfoRequested.event_type: _information_request,
    ComplaintRejected.event_type: _rejection,
    ComplaintWithdrawn.event_type: _withdrawal,
    ComplaintLinkedDuplicate.event_type: _duplicate,
    CaseOpened.event_type: _case_opened,
    CaseAssigned.event_type: _case_assigned,
    CaseRemedyOffered.event_type: _remedy_offered,
    CaseResolved.event_type: _case_resolved,
    CaseRejected.event_type: _case_rejected,
    ComplaintSlaWarning.event_type: _sla_alert,
    ComplaintSlaBreached.event_type: _sla_alert,
}


async def register_contact(
    session: AsyncSession,
    event: EventEnvelope[ComplaintInfoRequested] | EventEnvelope[ComplaintRejected],
    *,
    settings: Settings,
) -> None:
    """Keeps the contact an intake decision carries (a rejected complaint is never received)."""
    payload = event.payload
    await repository.lock_complaint(session, complaint_id=event.complaint_id)
    await _store_recipient(
        session,
        event,
        settings=settings,
        customer_id=payload.customer_id,
        sealed_contact=payload.sealed_contact,
        preferred_channel=payload.preferred_contact_channel,
        received_at=event.occurred_at,
    )


async def route_event(
    session: AsyncSession, event: EventEnvelope[Any], *, settings: Settings
) -> None:
    """Stores the messages an event causes, one per recipient and channel, and schedules them.

    An event the rules do not route is ignored. Nothing is sent here: a durable timer sends
    each message after this transaction commits, so a crash never loses or doubles one.
    """
    payload = event.payload
    facts = {
        name: str(value)
        for name in ("priority", "category")
        if (value := getattr(payload, name, None)) is not None
    }
    route = load_rules().route(event.event_type, facts)
    build = MESSAGE_CONTEXTS.get(event.event_type)
    if route is None or build is None:
        return
    await repository.lock_complaint(session, complaint_id=event.complaint_id)
    context = build(event, settings).model_dump(mode="json")
    for recipient in route.recipients:
        if recipient.audience is Audience.CUSTOMER:
            await _queue_customer_message(
                session, Cause.of(event), route, context, settings=settings
            )
        elif recipient.audience in (Audience.ASSIGNED_AGENT, Audience.SUPERVISOR):
            for channel in recipient.channels:
                await _queue_staff_message(
                    session, event, route, recipient.audience, channel, context, settings=settings
                )
        elif recipient.audience is Audience.MERCHANT:
            await _queue_merchant_messages(session, event, route)


@dataclass(frozen=True)
class Cause:
    """What a message is about: the event (or notification's own occasion) that caused it."""

    event_id: UUID
    complaint_id: UUID
    complaint_number: str
    correlation_id: str

    @classmethod
    def of(cls, event: EventEnvelope[Any]) -> "Cause":
        """The cause of the messages an event makes."""
        return cls(
            event.event_id,
            event.complaint_id,
            event.payload.complaint_number,
            event.correlation_id,
        )


def _message_values(
    cause: Cause,
    route: MessageRoute,
    *,
    audience: str,
    recipient_id: str,
    channel: str | None,
    key_channel: str,
    context: dict[str, Any],
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": uuid.uuid4(),
        "delivery_key": delivery_key(cause.event_id, audience, recipient_id, key_channel),
        "event_id": cause.event_id,
        "complaint_id": cause.complaint_id,
        "complaint_number": cause.complaint_number,
        "correlation_id": cause.correlation_id,
        "message_type": route.message_type,
        "audience": audience,
        "recipient_id": recipient_id,
        "channel": channel,
        "essential": route.essential,
        "urgent": route.urgent,
        "status": AWAITING_CONTACT,
        "reason": None,
        "context": context,
        "subject": None,
        "body": None,
        "template": None,
        "template_version": None,
        "locale": None,
        "attempts": 0,
        "retry_base": 0,
        "provider_reference": None,
        "provider_response": None,
        "send_at": None,
        "sent_at": None,
        "created_at": now,
        "updated_at": now,
    }


async def _queue_customer_message(
    session: AsyncSession,
    cause: Cause,
    route: MessageRoute,
    context: dict[str, Any],
    *,
    settings: Settings,
) -> None:
    values = _message_values(
        cause,
        route,
        audience=Audience.CUSTOMER,
        recipient_id=str(cause.complaint_id),
        channel=None,
        key_channel=CUSTOMER_CHANNEL_KEY,
        context=context,
    )
    recipient = await repository.get_recipient_and_preferences(
        session, complaint_id=cause.complaint_id
    )
    if recipient is not None:
        values |= _customer_plan(values, recipient, settings=settings, now=values["created_at"])
    elif await repository.is_erased(session, complaint_id=cause.complaint_id):
        values |= {"status": SKIPPED, "reason": "the customer was erased"}
    # Otherwise it waits for the contact (complaint.received comes on another topic).
    # The message is stored as planned: one INSERT, no read back and no second UPDATE.
    if await repository.insert_message(session, values) and values["status"] == QUEUED:
        await _schedule_send(session, values, due_at=values["send_at"])


def _customer_plan(
    message: Mapping[Any, Any], recipient: Row[Any], *, settings: Settings, now: datetime
) -> dict[str, Any]:
    """A customer message's status, channel, locale and send time (preferences, quiet hours).

    `recipient` carries its customer's `stated_preferences` (null: none stated).
    """
    if recipient.sealed_contact is None:
        return {"status": SKIPPED, "reason": "the customer was erased"}
    preferences = _preferences_from(recipient.stated_preferences, recipient.preferred_channel)
    catalog = default_catalog()
    reachable = {
        channel
        for channel in recipient.reachable_channels or ()
        if catalog.has_template(message["message_type"], channel)
    }
    configured = reachable & configured_channels(settings)
    # A configured channel first; when none of the reachable ones is, the plan still names one
    # and the send fails as "channel not configured" (never pretending it went).
    plan = plan_delivery(
        preferences,
        essential=message["essential"],
        urgent=message["urgent"],
        reachable=configured or reachable,
        now=now,
    )
    if plan.skipped:
        return {"status": SKIPPED, "reason": plan.reason}
    assert plan.send_at is not None
    assert plan.channel is not None
    return {
        "status": QUEUED,
        "channel": plan.channel,
        "reason": plan.reason,
        "locale": preferences.locale,
        "send_at": plan.send_at,
    }


async def _plan_customer_message(
    session: AsyncSession, message: Row[Any], recipient: Row[Any], *, settings: Settings
) -> None:
    """Plans a customer message that waited for the contact, now that it is known."""
    now = utcnow()
    plan = _customer_plan(message._mapping, recipient, settings=settings, now=now)
    await repository.update_message(session, message_id=message.id, updated_at=now, **plan)
    if plan["status"] == QUEUED:
        await _schedule_send(session, message._mapping, due_at=plan["send_at"])


async def _queue_staff_message(
    session: AsyncSession,
    event: EventEnvelope[Any],
    route: MessageRoute,
    audience: Audience,
    channel: str,
    context: dict[str, Any],
    *,
    settings: Settings,
) -> None:
    team = str(getattr(event.payload, "team", "*"))
    now = utcnow()
    member = await _assigned_member(session, event, audience)
    if member is not None:
        # The assigned agent's own address when the directory has it; else the team's.
        recipient_id = f"{STAFF_RECIPIENT_PREFIX}{member}"
    else:
        recipient_id = f"{audience.value}:{team}"
    values = _message_values(
        Cause.of(event),
        route,
        audience=audience,
        recipient_id=recipient_id,
        channel=channel,
        key_channel=channel,
        context=context,
    )
    if member is None and staff_address(settings, audience, team) is None:
        values |= {"status": SKIPPED, "reason": f"no address for the {audience} of team {team}"}
    else:
        values |= {"status": QUEUED, "locale": DEFAULT_LOCALE, "send_at": now}
    if await repository.insert_message(session, values) and values["status"] == QUEUED:
        await _schedule_send(session, values, due_at=now)


async def _queue_merchant_messages(
    session: AsyncSession, event: EventEnvelope[Any], route: MessageRoute
) -> None:
    """One webhook message per endpoint the merchant registered, carrying only merchant fields."""
    merchant_id = getattr(event.payload, "merchant_id", None)
    if merchant_id is None:
        return
    data = route.merchant_view(event.payload.model_dump(mode="json"))
    context = {"occurred_at": event.occurred_at.isoformat(), "data": data}
    now = utcnow()
    for endpoint in await repository.list_endpoints(session, merchant_id=merchant_id):
        values = _message_values(
            Cause.of(event),
            route,
            audience=Audience.MERCHANT,
            recipient_id=str(endpoint.id),
            channel=DeliveryChannel.WEBHOOK,
            key_channel=DeliveryChannel.WEBHOOK,
            context=context,
        ) | {"status": QUEUED, "send_at": now}
        if await repository.insert_message(session, values):
            await _schedule_send(session, values, due_at=now)


def _preferences_from(stated: Any, preferred_channel: str) -> CustomerPreferences:
    """The customer's stated preferences, else the defaults with the complaint's channel first."""
    if stated is not None:
        return CustomerPreferences.model_validate(stated)
    return CustomerPreferences.from_preferred_channel(preferred_channel)


async def _assigned_member(
    session: AsyncSession, event: EventEnvelope[Any], audience: Audience
) -> str | None:
    """The assigned agent a staff message is for, if the staff directory has their address.

    The agent is the event's assignee (case.assigned) or, for SLA alerts, the case's latest.
    """
    if audience is not Audience.ASSIGNED_AGENT:
        return None
    member = getattr(event.payload, "assignee_id", None)
    if member is None:
        case = await repository.get_case(session, complaint_id=event.complaint_id)
        member = case.assignee_id if case is not None else None
    if member is None or await repository.get_staff_contact(session, staff_id=member) is None:
        return None
    return str(member)


def staff_address(settings: Settings, audience: str, team: str) -> str | None:
    """A staff member's address from the settings: per team, else the audience's default."""
    return settings.staff_emails.get(f"{audience}:{team}") or settings.staff_emails.get(
        f"{audience}:*"
    )


async def _schedule_send(
    session: AsyncSession, message: Mapping[Any, Any], *, due_at: datetime
) -> None:
    await schedule(
        session,
        timers,
        kind=DELIVER_TIMER,
        key=message["delivery_key"],
        due_at=due_at,
        payload={
            "message_id": str(message["id"]),
            "complaint_id": str(message["complaint_id"]),
            "correlation_id": message["correlation_id"],
        },
    )


async def deliver(
    session: AsyncSession, timer: Timer, *, settings: Settings, channels: ChannelSet
) -> None:
    """Sends one message (the timer's), records the attempt and decides what comes next.

    The attempt's start commits on its own before the send: a process killed mid-send leaves
    the message `sending` and its timer pending. The next firing sends it again with the same
    idempotency key where the provider deduplicates by it (SMS, push, webhooks), and otherwise
    (SMTP) records it as uncertain rather than risk a second copy.
    """
    message_id = UUID(timer.payload["message_id"])
    message = await repository.get_message_to_send(session, message_id=message_id)
    if message is None or message.status not in SENDABLE:
        return
    if message.status == SENDING and message.channel not in channels.resend_safe:
        await _finish(
            session,
            message,
            attempt=message.attempts,
            result=DeliveryResult.uncertain(
                "the process stopped during the send and no answer was recorded; "
                f"{message.channel} has no idempotency key, so it is not sent again",
                retryable=False,
            ),
            timer=timer,
            channels=channels,
        )
        return
    attempt = await _start_attempt(session, message_id)
    redacted: Message | None = None
    channel = channels.get(message.channel)
    if channel is None:
        result = DeliveryResult.failed(NOT_CONFIGURED, retryable=False)
    else:
        try:
            rendered, recipient, redacted = await _prepare(session, message, settings=settings)
        except UndeliverableError as exc:
            result = DeliveryResult.failed(str(exc), retryable=False)
        else:
            result = await channel.send(rendered, recipient, message.delivery_key)
    await _finish(
        session,
        message,
        attempt=attempt,
        result=result,
        timer=timer,
        channels=channels,
        redacted=redacted,
    )


async def _start_attempt(session: AsyncSession, message_id: UUID) -> int:
    # Its own transaction, committed before anything goes out (see `deliver`). The caller's
    # transaction has only read the message, so this takes no lock it holds.
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    async with AsyncSession(engine) as own, own.begin():
        return await repository.start_attempt(own, message_id=message_id, now=utcnow())


async def _prepare(
    session: AsyncSession, message: Row[Any], *, settings: Settings
) -> tuple[Message, Recipient, Message]:
    """The rendered message, its recipient, and the message as the log keeps it (redacted)."""
    name: str | None = None
    phones: list[str] = []
    emails: list[str] = []
    if message.audience == Audience.MERCHANT:
        endpoint = await repository.get_endpoint(session, endpoint_id=UUID(message.recipient_id))
        if endpoint is None or endpoint.deleted_at is not None:
            raise UndeliverableError("the merchant deleted the webhook endpoint")
        secret = unseal(endpoint.sealed_secret, settings.pii_keyring)["secret"]
        webhook = webhook_message(
            message.message_type,
            datetime.fromisoformat(message.context["occurred_at"]),
            message.context["data"],
        )
        # Merchant fields never hold contact data (routing refuses them): kept as sent.
        return webhook, Recipient(address=endpoint.url, signing_secret=secret), webhook
    if message.audience == Audience.CUSTOMER:
        if message.recipient_complaint_id is None or message.recipient_sealed_contact is None:
            raise UndeliverableError("the customer was erased")
        contact = unseal(message.recipient_sealed_contact, settings.pii_keyring)
        address = contact.get(CONTACT_FIELDS.get(message.channel, ""))
        if not address:
            raise UndeliverableError(f"no {message.channel} address for the customer")
        name = contact.get("name")
        phones = [contact["phone"]] if contact.get("phone") else []
        emails = [contact["email"]] if contact.get("email") else []
        context = {**message.context, "customer_name": name}
        time_zone = _preferences_from(
            message.stated_preferences, message.recipient_preferred_channel
        ).time_zone
    else:
        staff = await _staff_recipient_address(
            session, message.recipient_id, message.audience, settings
        )
        address = staff
        emails = [staff]
        context = dict(message.context)
        time_zone = DEFAULT_TIME_ZONE
    try:
        rendered = default_catalog().render(
            message.message_type, message.channel, message.locale, context, time_zone=time_zone
        )
    except _TEMPLATE_ERRORS as exc:
        raise UndeliverableError(f"cannot render the message: {exc}") from exc
    redacted = redact_message(rendered, names=[name], phones=phones, emails=emails)
    return rendered, Recipient(address=str(address), name=name), redacted


async def _staff_recipient_address(
    session: AsyncSession, recipient_id: str, audience: str, settings: Settings
) -> str:
    """A staff message's address: the member's own (directory), or the team's (settings)."""
    if recipient_id.startswith(STAFF_RECIPIENT_PREFIX):
        member = recipient_id.removeprefix(STAFF_RECIPIENT_PREFIX)
        entry = await repository.get_staff_contact(session, staff_id=member)
        if entry is None:
            raise UndeliverableError(f"{member} has no address in the staff directory any more")
        email: str = unseal(entry.sealed_email, settings.pii_keyring)["email"]
        return email
    team = recipient_id.partition(":")[2]
    staff = staff_address(settings, audience, team)
    if staff is None:
        raise UndeliverableError(f"no address for the {audience} of team {team}")
    return staff


async def _finish(
    session: AsyncSession,
    message: Row[Any],
    *,
    attempt: int,
    result: DeliveryResult,
    timer: Timer,
    channels: ChannelSet,
    redacted: Message | None = None,
) -> None:
    """Records an attempt's outcome: sent, retried on the channel's schedule, or given up."""
    now = utcnow()
    # The attempt is written with the message's new state, in the same statement.
    record = {
        "message_id": message.id,
        "attempt": {
            "message_id": message.id,
            "attempt": attempt,
            "status": result.status.value,
            "retryable": result.retryable,
            "provider_reference": result.provider_reference,
            "provider_response": result.provider_response,
            "attempted_at": now,
        },
    }
    content: dict[str, Any] = {}
    if redacted is not None:
        content = {
            "subject": redacted.subject,
            "body": redacted.text,
            "template": redacted.template,
            "template_version": redacted.template_version,
            "locale": redacted.locale,
        }
    outcome = {
        "provider_reference": result.provider_reference,
        "provider_response": result.provider_response,
        "updated_at": now,
        **content,
    }
    if result.status is DeliveryStatus.SENT:
        await repository.record_attempt(
            session, **record, status=SENT, reason=None, sent_at=now, **outcome
        )
        await _emit(
            session,
            message,
            NotificationSent(
                message_id=message.id,
                delivery_key=message.delivery_key,
                complaint_number=message.complaint_number,
                message_type=message.message_type,
                audience=message.audience,
                channel=message.channel,
                attempts=attempt,
                provider_reference=result.provider_reference,
                sent_at=now,
            ),
        )
        return
    decision = after_failure(
        channels.retry_policy(message.channel),
        attempts_made=max(attempt - message.retry_base, 1),
        failed_at=now,
        retryable=result.retryable,
        draw=random.random(),
    )
    if decision.retry_at is not None:
        await repository.record_attempt(
            session,
            **record,
            status=RETRYING,
            reason=decision.reason,
            send_at=decision.retry_at,
            **outcome,
        )
        await schedule_again(session, timers, timer, due_at=decision.retry_at)
        return
    if not result.retryable:
        status = UNCERTAIN if result.status is DeliveryStatus.UNCERTAIN else FAILED
        reason = result.provider_response
    else:
        status, reason = DEAD_LETTER, decision.reason
    await repository.record_attempt(session, **record, status=status, reason=reason, **outcome)
    await _emit(
        session,
        message,
        NotificationFailed(
            message_id=message.id,
            delivery_key=message.delivery_key,
            complaint_number=message.complaint_number,
            message_type=message.message_type,
            audience=message.audience,
            channel=message.channel,
            status=status,
            # One line, bounded: provider answers may span lines (multi-line SMTP replies).
            reason=" ".join(reason.split())[:2000] or status,
            attempts=attempt,
            failed_at=now,
        ),
    )


async def _emit(session: AsyncSession, message: Row[Any], payload: Any) -> None:
    # A delivery's outcome is emitted from the timer worker while the consumer may be adding
    # events of the same complaint: the complaint's lock (held to commit) makes the outbox's
    # order of a complaint's rows the order they commit in, so the topic keeps it.
    await repository.lock_complaint(session, complaint_id=message.complaint_id)
    await outbox.add(
        session,
        new_event(
            payload,
            producer=PRODUCER,
            complaint_id=message.complaint_id,
            correlation_id=message.correlation_id,
        ),
    )


# --- merchants' webhook endpoints -------------------------------------------------------


def _endpoint_view(row: Row[Any]) -> WebhookEndpointView:
    return WebhookEndpointView(
        endpoint_id=row.id,
        merchant_id=row.merchant_id,
        url=row.url,
        label=row.label,
        created_at=row.created_at,
        rotated_at=row.rotated_at,
    )


async def check_endpoint_url(url: str, *, settings: Settings) -> None:
    """Refuses a URL that would make the platform call its own network (unless allowed)."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise UnprocessableError("a webhook URL is http(s)://host/...")
    if parsed.username or parsed.password:
        raise UnprocessableError("a webhook URL carries no credentials: the signature is the proof")
    if settings.webhook_allow_internal_urls:
        return
    host = parsed.hostname
    if host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
        raise UnprocessableError(f"{host} is an internal address")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parsed.port or 443)
    except OSError as exc:
        raise UnprocessableError(f"{host} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise UnprocessableError(f"{host} resolves to an internal address")


async def create_endpoint(
    session: AsyncSession,
    *,
    merchant_id: str,
    request: WebhookEndpointCreate,
    settings: Settings,
    principal: Principal,
) -> WebhookEndpointCreated:
    """Registers a merchant's endpoint; its secret is in this answer and never again."""
    ensure_visible(principal, f"no merchant {merchant_id}", merchant_id=merchant_id)
    await check_endpoint_url(request.url, settings=settings)
    secret = generate_secret()
    now = utcnow()
    values: dict[str, Any] = {
        "merchant_id": merchant_id,
        "url": request.url,
        "sealed_secret": seal({"secret": secret}, settings.pii_keyring),
        "label": request.label,
        "created_at": now,
        "rotated_at": None,
        "deleted_at": None,
    }
    endpoint_id = uuid.uuid4()
    await repository.insert_endpoint(session, values | {"id": endpoint_id})
    row = await repository.get_endpoint(session, endpoint_id=endpoint_id)
    assert row is not None
    return WebhookEndpointCreated(**_endpoint_view(row).model_dump(), secret=secret)


async def list_endpoints(
    session: AsyncSession, *, merchant_id: str, principal: Principal
) -> WebhookEndpointList:
    """A merchant's endpoints, without their secrets."""
    ensure_visible(principal, f"no merchant {merchant_id}", merchant_id=merchant_id)
    rows = await repository.list_endpoints(session, merchant_id=merchant_id)
    return WebhookEndpointList(items=[_endpoint_view(row) for row in rows])


async def _own_endpoint(
    session: AsyncSession, *, merchant_id: str, endpoint_id: UUID, principal: Principal
) -> Row[Any]:
    missing = f"no webhook endpoint {endpoint_id}"
    ensure_visible(principal, missing, merchant_id=merchant_id)
    row = await repository.get_endpoint(session, endpoint_id=endpoint_id)
    if row is None or row.merchant_id != merchant_id or row.deleted_at is not None:
        raise NotFoundError(missing)
    return row


async def rotate_endpoint_secret(
    session: AsyncSession,
    *,
    merchant_id: str,
    endpoint_id: UUID,
    settings: Settings,
    principal: Principal,
) -> WebhookEndpointCreated:
    """Gives an endpoint a new secret (shown once); the next deliveries are signed with it."""
    row = await _own_endpoint(
        session, merchant_id=merchant_id, endpoint_id=endpoint_id, principal=principal
    )
    secret = generate_secret()
    await repository.update_endpoint(
        session,
        endpoint_id=row.id,
        sealed_secret=seal({"secret": secret}, settings.pii_keyring),
        rotated_at=utcnow(),
    )
    updated = await repository.get_endpoint(session, endpoint_id=row.id)
    assert updated is not None
    return WebhookEndpointCreated(**_endpoint_view(updated).model_dump(), secret=secret)


async def delete_endpoint(
    session: AsyncSession, *, merchant_id: str, endpoint_id: UUID, principal: Principal
) -> None:
    """Deletes an endpoint: nothing more is sent to it, queued messages included."""
    row = await _own_endpoint(
        session, merchant_id=merchant_id, endpoint_id=endpoint_id, principal=principal
    )
    await repository.update_endpoint(session, endpoint_id=row.id, deleted_at=utcnow())


async def replay_dead_letters(
    session: AsyncSession,
    *,
    message_ids: list[UUID] | None = None,
    endpoint_ids: list[UUID] | None = None,
) -> list[UUID]:
    """Puts dead letters back on a fresh retry schedule, sent again with their own keys."""
    now = utcnow()
    rows = await repository.reopen_dead_letters(
        session,
        now=now,
        message_ids=message_ids,
        merchant_endpoint_ids=[str(e) for e in endpoint_ids] if endpoint_ids else None,
    )
    for row in rows:
        await _schedule_send(session, row._mapping, due_at=now)
    return [row.id for row in rows]


# --- customer preferences ---------------------------------------------------------------


async def _check_preferences_scope(
    session: AsyncSession,
    *,
    customer_id: str,
    stated: Row[Any] | None,
    principal: Principal,
    creating: bool,
) -> None:
    """A storefront reaches the customers whose complaints it posted (or whom it set up)."""
    missing = f"no preferences for customer {customer_id}"
    storefronts = await repository.customer_storefronts(session, customer_id=customer_id)
    if stated is not None and stated.storefront_id is not None:
        storefronts.add(stated.storefront_id)
    if principal.role is Role.STOREFRONT:
        # A customer nobody knows yet may be set up by the storefront that names them.
        known = bool(storefronts) or stated is not None
        if (known or not creating) and principal.storefront_id not in storefronts:
            raise NotFoundError(missing)
        ensure_visible(
            principal, missing, storefront_id=principal.storefront_id, customer_id=customer_id
        )
        return
    ensure_visible(principal, missing)
    if not creating and stated is None and not storefronts:
        raise NotFoundError(missing)


async def get_preferences(
    session: AsyncSession, *, customer_id: str, principal: Principal
) -> PreferencesView:
    """The customer's preferences: stated ones, or the defaults their complaints imply."""
    stated = await repository.get_preferences(session, customer_id=customer_id)
    await _check_preferences_scope(
        session, customer_id=customer_id, stated=stated, principal=principal, creating=False
    )
    if stated is not None:
        return PreferencesView(
            customer_id=customer_id,
            stated=True,
            preferences=CustomerPreferences.model_validate(stated.preferences),
            updated_at=stated.updated_at,
        )
    preferred = await repository.latest_preferred_channel(session, customer_id=customer_id)
    return PreferencesView(
        customer_id=customer_id,
        stated=False,
        preferences=CustomerPreferences.from_preferred_channel(preferred),
        updated_at=None,
    )


async def put_preferences(
    session: AsyncSession,
    *,
    customer_id: str,
    preferences: CustomerPreferences,
    principal: Principal,
) -> PreferencesView:
    """Replaces the customer's preferences; messages planned from now on follow them."""
    stated = await repository.get_preferences(session, customer_id=customer_id)
    await _check_preferences_scope(
        session, customer_id=customer_id, stated=stated, principal=principal, creating=True
    )
    now = utcnow()
    await repository.put_preferences(
        session,
        {
            "customer_id": customer_id,
            "storefront_id": principal.storefront_id if principal.role is Role.STOREFRONT else None,
            "preferences": preferences.model_dump(mode="json"),
            "updated_at": now,
        },
    )
    return PreferencesView(
        customer_id=customer_id, stated=True, preferences=preferences, updated_at=now
    )


# --- template preview (ops) -------------------------------------------------------------


def preview_template(
    *, message_type: str, channel: str, locale: str, request: PreviewRequest
) -> PreviewView:
    """Renders a template with the given context, or its sample, as a customer would read it."""
    catalog = default_catalog()
    if request.context is None:
        try:
            context: Any = contexts.sample_context(message_type)
        except KeyError:
            raise NotFoundError(f"no template for {message_type}") from None
    else:
        context = request.context
    try:
        rendered = catalog.render(
            message_type, channel, locale, context, time_zone=request.time_zone
        )
    except TemplateNotFoundError as exc:
        raise NotFoundError(str(exc)) from exc
    except (TemplateContextError, TemplateRenderError) as exc:
        raise UnprocessableError(str(exc)) from exc
    return PreviewView(
        message_type=message_type,
        channel=channel,
        template=rendered.template or "",
        template_version=rendered.template_version or 0,
        locale=rendered.locale or locale,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
    )


# --- satisfaction surveys (回访) ---------------------------------------------------------

SURVEY_INVITE_TIMER = "notification.survey_invite"
SURVEY_REMIND_TIMER = "notification.survey_remind"
SURVEY_INVITATION = "notification.survey_invitation"
SURVEY_REMINDER = "notification.survey_reminder"
# A survey's messages have no event of their own: their cause ids derive from the case.
_SURVEY_CAUSES = uuid.UUID("9b1f6c3e-2d47-4a8e-b5c1-7e0f3a9d2c64")


def survey_tokens(settings: Settings) -> SurveyTokens:
    """The survey link signer, on the process clock (tests move it)."""
    keys = settings.survey_signing_keys()
    if not keys:
        raise ServiceUnavailableError("surveys are not configured: no survey signing keys")
    return SurveyTokens(
        keys,
        valid_for=settings.survey_policy().valid_for,
        clock=default_clock(),
    )


async def record_case(session: AsyncSession, event: EventEnvelope[CaseOpened]) -> None:
    """Remembers the case of a complaint: what its survey will be about."""
    case = event.payload
    await repository.insert_case(
        session,
        {
            "complaint_id": event.complaint_id,
            "case_id": case.case_id,
            "complaint_number": case.complaint_number,
            "merchant_id": case.merchant_id,
            "opened_at": case.opened_at,
        },
    )


def _survey_view(row: Row[Any]) -> SurveyView:
    return SurveyView(
        case_id=row.case_id,
        complaint_id=row.complaint_id,
        complaint_number=row.complaint_number,
        merchant_id=row.merchant_id,
        requested_by=row.requested_by,
        resolved_at=row.resolved_at,
        invited_at=row.invited_at,
        expires_at=row.expires_at,
        reminded_at=row.reminded_at,
        answered_at=row.answered_at,
        score=row.score,
        reasons=list(row.reasons or []),
        subjects=list(row.subjects or []),
        comment=row.comment,
    )


async def _create_survey(
    session: AsyncSession,
    case: Row[Any],
    *,
    resolved_at: datetime,
    requested_by: str,
    settings: Settings,
) -> bool:
    """Stores a case's survey and its invitation timer; False if the case has one already."""
    stored = await repository.insert_survey(
        session,
        {
            "case_id": case.case_id,
            "complaint_id": case.complaint_id,
            "complaint_number": case.complaint_number,
            "merchant_id": case.merchant_id,
            "requested_by": requested_by,
            "resolved_at": resolved_at,
            "created_at": utcnow(),
        },
    )
    if stored:
        await schedule(
            session,
            timers,
            kind=SURVEY_INVITE_TIMER,
            key=str(case.case_id),
            due_at=invitation_due_at(resolved_at, settings.survey_policy()),
            payload={"case_id": str(case.case_id), "complaint_id": str(case.complaint_id)},
        )
    return stored


async def request_survey(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    request: SurveyRequest,
    settings: Settings,
    principal: Principal,
) -> SurveyView:
    """Asks the customer of a case how it went, when ops decide (one survey per case).

    Resolved cases get theirs from case.resolved; this is for the others ops choose.
    """
    missing = f"no notifications for complaint {complaint_id}"
    ensure_visible(principal, missing)
    survey_tokens(settings)  # refuse now, not when the invitation is due, if links cannot be signed
    case = await repository.get_case(session, complaint_id=complaint_id)
    if case is None:
        raise NotFoundError(missing)
    stored = await _create_survey(
        session,
        case,
        resolved_at=request.resolved_at or utcnow(),
        requested_by=principal.id,
        settings=settings,
    )
    if not stored:
        raise ConflictError(f"a survey was already requested for complaint {complaint_id}")
    row = await repository.get_survey(session, case_id=case.case_id)
    assert row is not None
    return _survey_view(row)


async def survey_resolved_case(
    session: AsyncSession, event: EventEnvelope[CaseResolved], *, settings: Settings
) -> None:
    """A resolved case's survey, once (a redelivered case.resolved or ops' request: no second)."""
    if not settings.survey_signing_keys():
        return  # surveys are not configured (production without keys): nothing to sign
    case = await repository.get_case(session, complaint_id=event.complaint_id)
    if case is None:
        return  # case.opened has not arrived: the case is not known here
    await _create_survey(
        session,
        case,
        resolved_at=event.payload.resolved_at or event.payload.at,
        requested_by=event.producer,
        settings=settings,
    )


def _survey_cause(survey: Row[Any], occasion: str) -> Cause:
    return Cause(
        event_id=uuid.uuid5(_SURVEY_CAUSES, f"{survey.case_id}|{occasion}"),
        complaint_id=survey.complaint_id,
        complaint_number=survey.complaint_number,
        correlation_id=f"survey-{survey.case_id}",
    )


async def _queue_survey_message(
    session: AsyncSession, survey: Row[Any], message_type: str, *, settings: Settings
) -> None:
    route = load_rules().route(message_type)
    if route is None:
        return
    await repository.lock_complaint(session, complaint_id=survey.complaint_id)
    context = contexts.SurveyInvitation(
        complaint_number=survey.complaint_number,
        survey_url=f"{settings.survey_url_base}{survey.token}",
        expires_at=survey.expires_at,
    ).model_dump(mode="json")
    await _queue_customer_message(
        session, _survey_cause(survey, message_type), route, context, settings=settings
    )


async def invite_to_survey(session: AsyncSession, timer: Timer, *, settings: Settings) -> None:
    """Sends the survey's link (signed, expiring) and schedules its one reminder."""
    survey = await repository.get_survey(session, case_id=UUID(timer.payload["case_id"]))
    if survey is None or survey.invited_at is not None or survey.answered_at is not None:
        return
    policy = settings.survey_policy()
    now = utcnow()
    token = survey_tokens(settings).issue(
        SurveyScope(case_id=survey.case_id, complaint_number=survey.complaint_number)
    )
    await repository.update_survey(
        session,
        case_id=survey.case_id,
        token=token,
        invited_at=now,
        expires_at=now + policy.valid_for,
    )
    survey = await repository.get_survey(session, case_id=survey.case_id)
    assert survey is not None
    await _queue_survey_message(session, survey, SURVEY_INVITATION, settings=settings)
    remind_at = reminder_due_at(now, policy)
    if remind_at is not None:
        await schedule(
            session,
            timers,
            kind=SURVEY_REMIND_TIMER,
            key=str(survey.case_id),
            due_at=remind_at,
            payload=timer.payload,
        )


async def remind_of_survey(session: AsyncSession, timer: Timer, *, settings: Settings) -> None:
    """Sends the one reminder of a survey still unanswered, while it is worth answering."""
    survey = await repository.get_survey(session, case_id=UUID(timer.payload["case_id"]))
    if survey is None or survey.invited_at is None:
        return
    now = utcnow()
    if not should_remind(
        invited_at=survey.invited_at,
        now=now,
        answered=survey.answered_at is not None,
        reminders_sent=0 if survey.reminded_at is None else 1,
        policy=settings.survey_policy(),
    ):
        return
    await repository.update_survey(session, case_id=survey.case_id, reminded_at=now)
    await _queue_survey_message(session, survey, SURVEY_REMINDER, settings=settings)


async def answer_survey(
    session: AsyncSession, *, token: str, answer: SurveyAnswer, settings: Settings
) -> SurveyReceipt:
    """Takes the one answer a survey link allows; the token is the only credential."""
    try:
        scope = survey_tokens(settings).open(token)
    except SurveyTokenExpiredError as exc:
        raise GoneError("this survey link has expired") from exc
    except SurveyTokenInvalidError as exc:
        raise NotFoundError("no survey for this link") from exc
    survey = await repository.get_survey(session, case_id=scope.case_id, for_update=True)
    if survey is None or survey.complaint_number != scope.complaint_number:
        raise NotFoundError("no survey for this link")
    if survey.answered_at is not None:
        raise ConflictError("this survey was already answered")
    if await repository.is_erased(session, complaint_id=survey.complaint_id):
        raise GoneError("this survey is closed")
    now = utcnow()
    reasons = [reason.value for reason in answer.reasons]
    subjects = sorted(subject.value for subject in answer.subjects)
    await repository.update_survey(
        session,
        case_id=survey.case_id,
        answered_at=now,
        score=answer.score,
        reasons=reasons,
        subjects=subjects,
        comment=answer.comment,
    )
    await repository.lock_complaint(session, complaint_id=survey.complaint_id)  # see _emit
    await outbox.add(
        session,
        new_event(
            SurveyCompleted(
                case_id=survey.case_id,
                complaint_number=survey.complaint_number,
                merchant_id=survey.merchant_id,
                score=answer.score,
                reasons=reasons,
                subjects=subjects,
                has_comment=answer.comment is not None,
                answered_at=now,
            ),
            producer=PRODUCER,
            complaint_id=survey.complaint_id,
            correlation_id=f"survey-{survey.case_id}",
        ),
    )
    return SurveyReceipt(complaint_number=survey.complaint_number, answered_at=now)


async def list_surveys(
    session: AsyncSession,
    *,
    merchant_id: str | None,
    answered: bool | None,
    limit: int,
    principal: Principal,
) -> SurveyList:
    """Survey results for ops and supervisors (KPIs of agents, merchants and the platform)."""
    rows = await repository.list_surveys(
        session, merchant_id=merchant_id, answered=answered, limit=limit
    )
    scores = [row.score for row in rows if row.score is not None]
    return SurveyList(
        items=[_survey_view(row) for row in rows],
        answered=len(scores),
        average_score=round(sum(scores) / len(scores), 2) if scores else None,
    )


# --- progress updates (every 24 hours while open) ---------------------------------------

PROGRESS_TIMER = "notification.progress"
PROGRESS_UPDATE = "notification.progress_update"
_PROGRESS_CAUSES = uuid.UUID("c2a7d915-4e0b-4f3a-9d61-58b0e4f7a3c2")


async def start_progress_updates(
    session: AsyncSession, event: EventEnvelope[ComplaintTriaged], *, settings: Settings
) -> None:
    """Starts the updates of a complaint triaged into a category that gets them (logistics)."""
    triage = event.payload
    if triage.category not in settings.progress_categories:
        return
    now = utcnow()
    started = await repository.start_progress(
        session,
        {
            "complaint_id": event.complaint_id,
            "complaint_number": triage.complaint_number,
            "category": triage.category,
            "started_at": now,
            "sent": 0,
            "stopped_at": None,
            "stop_reason": None,
        },
    )
    if started:
        await schedule(
            session,
            timers,
            kind=PROGRESS_TIMER,
            key=str(event.complaint_id),
            due_at=now + timedelta(seconds=settings.progress_interval_seconds),
            payload={
                "complaint_id": str(event.complaint_id),
                "correlation_id": event.correlation_id,
            },
        )


async def stop_progress_updates(session: AsyncSession, event: EventEnvelope[Any]) -> None:
    """Stops a complaint's updates for good: its case is over (or its customer erased)."""
    await _stop_progress(session, event.complaint_id, reason=event.event_type)


async def _stop_progress(session: AsyncSession, complaint_id: UUID, *, reason: str) -> None:
    row = await repository.get_progress(session, complaint_id=complaint_id)
    if row is None or row.stopped_at is not None:
        return
    await repository.update_progress(
        session, complaint_id=complaint_id, stopped_at=utcnow(), stop_reason=reason
    )
    await cancel(session, timers, kind=PROGRESS_TIMER, key=str(complaint_id))


async def report_parcel(
    session: AsyncSession, *, complaint_id: UUID, report: ParcelReport, principal: Principal
) -> ParcelView:
    """Keeps the parcel's latest status for the progress updates; delivered stops them.

    The complaint's merchant reports it (admins for anyone); a report older than the stored
    one changes nothing, so reports may come late or twice.
    """
    recipient = await repository.get_recipient(session, complaint_id=complaint_id)
    missing = f"no notifications for complaint {complaint_id}"
    if recipient is None:
        raise NotFoundError(missing)
    ensure_visible(principal, missing, merchant_id=recipient.merchant_id)
    await repository.lock_complaint(session, complaint_id=complaint_id)
    row = await repository.report_parcel(
        session,
        {
            "complaint_id": complaint_id,
            "carrier": report.carrier,
            "tracking_number": report.tracking_number,
            "status": report.status,
            "status_at": report.status_at,
            "expected_delivery_at": report.expected_delivery_at,
            "delivered": report.delivered,
            "reported_by": principal.id,
            "updated_at": utcnow(),
        },
    )
    if row.delivered:
        await _stop_progress(session, complaint_id, reason="parcel_delivered")
    return ParcelView(
        complaint_id=row.complaint_id,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        status=row.status,
        status_at=row.status_at,
        expected_delivery_at=row.expected_delivery_at,
        delivered=row.delivered,
        reported_by=row.reported_by,
        updated_at=row.updated_at,
    )


async def send_progress_update(session: AsyncSession, timer: Timer, *, settings: Settings) -> None:
    """Queues one progress update (opted-out customers skip it) and schedules the next one."""
    complaint_id = UUID(timer.payload["complaint_id"])
    row = await repository.get_progress(session, complaint_id=complaint_id)
    if row is None or row.stopped_at is not None:
        return
    route = load_rules().route(PROGRESS_UPDATE)
    if route is None:
        return
    await repository.lock_complaint(session, complaint_id=complaint_id)
    number = row.sent + 1
    now = utcnow()
    next_at = now + timedelta(seconds=settings.progress_interval_seconds)
    cause = Cause(
        event_id=uuid.uuid5(_PROGRESS_CAUSES, f"{complaint_id}|{number}"),
        complaint_id=complaint_id,
        complaint_number=row.complaint_number,
        correlation_id=str(timer.payload.get("correlation_id") or f"progress-{complaint_id}"),
    )
    # The parcel as its merchant last reported it (PUT .../parcel); none yet: the update says
    # the carrier is being asked.
    parcel = await repository.get_parcel(session, complaint_id=complaint_id)
    context = contexts.ProgressUpdate(
        complaint_number=row.complaint_number,
        next_update_at=next_at,
        carrier=parcel.carrier if parcel else None,
        tracking_number=parcel.tracking_number if parcel else None,
        latest_status=parcel.status if parcel else None,
        latest_status_at=parcel.status_at if parcel else None,
        expected_delivery_at=parcel.expected_delivery_at if parcel else None,
    ).model_dump(mode="json")
    await _queue_customer_message(session, cause, route, context, settings=settings)
    await repository.update_progress(session, complaint_id=complaint_id, sent=number)
    await schedule_again(session, timers, timer, due_at=next_at)


# --- the staff directory --------------------------------------------------------------------


def _check_staff_scope(principal: Principal, staff_id: str) -> None:
    # Ops admins and supervisors keep the directory; a staff member may keep their own entry.
    # Anyone else is told there is no such entry, as for other resources out of scope.
    if principal.role in (Role.ADMIN, Role.SUPERVISOR) or principal.id == staff_id:
        return
    raise NotFoundError(f"no staff directory entry for {staff_id}")


def _staff_contact_view(row: Row[Any], settings: Settings) -> StaffContactView:
    email = unseal(row.sealed_email, settings.pii_keyring)["email"]
    return StaffContactView(
        staff_id=row.staff_id,
        email=mask_email(email) or "",
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


async def put_staff_contact(
    session: AsyncSession,
    *,
    staff_id: str,
    request: StaffContactPut,
    settings: Settings,
    principal: Principal,
) -> StaffContactView:
    """Stores a staff member's own address (sealed): their assignments and alerts go there."""
    _check_staff_scope(principal, staff_id)
    await repository.put_staff_contact(
        session,
        {
            "staff_id": staff_id,
            "sealed_email": seal({"email": request.email}, settings.pii_keyring),
            "updated_by": principal.id,
            "updated_at": utcnow(),
        },
    )
    row = await repository.get_staff_contact(session, staff_id=staff_id)
    assert row is not None
    return _staff_contact_view(row, settings)


async def get_staff_contact(
    session: AsyncSession, *, staff_id: str, settings: Settings, principal: Principal
) -> StaffContactView:
    """A staff member's directory entry, the address masked."""
    _check_staff_scope(principal, staff_id)
    row = await repository.get_staff_contact(session, staff_id=staff_id)
    if row is None:
        raise NotFoundError(f"no staff directory entry for {staff_id}")
    return _staff_contact_view(row, settings)


async def delete_staff_contact(
    session: AsyncSession, *, staff_id: str, principal: Principal
) -> None:
    """Forgets a staff member's address: their messages go to the team's address again."""
    _check_staff_scope(principal, staff_id)
    if not await repository.delete_staff_contact(session, staff_id=staff_id):
        raise NotFoundError(f"no staff directory entry for {staff_id}")


async def record_assignment(session: AsyncSession, event: EventEnvelope[CaseAssigned]) -> None:
    """Remembers the case's assignee: later SLA alerts of the complaint go to them."""
    if event.payload.assignee_id is not None:
        await repository.set_case_assignee(
            session, complaint_id=event.complaint_id, assignee_id=event.payload.assignee_id
        )
