"""Triage's Kafka and timer handlers: plain functions of (session, event or timer)."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import (
    PAYLOAD_CLASSES,
    ComplaintReceived,
    ComplaintWithdrawn,
    CustomerErased,
    EventEnvelope,
    EventPayload,
    Topic,
)
from shared.messaging import Handler
from shared.timers import Timer, TimerHandler
from triage_service import service
from triage_service.config import get_settings


async def on_complaint_received(
    session: AsyncSession, event: EventEnvelope[ComplaintReceived]
) -> None:
    """Triages a newly received complaint and starts its SLA clocks."""
    await service.triage_complaint(session, event, settings=get_settings())


async def on_complaint_withdrawn(
    session: AsyncSession, event: EventEnvelope[ComplaintWithdrawn]
) -> None:
    """Stops every clock of a complaint the customer withdrew."""
    await service.stop_clocks(
        session,
        complaint_id=event.complaint_id,
        reason=service.WITHDRAWN,
        at=event.payload.withdrawn_at,
    )


async def on_customer_erased(session: AsyncSession, event: EventEnvelope[CustomerErased]) -> None:
    """Replaces the erased customer's id on this complaint with a pseudonym."""
    await service.erase_customer(session, event)


async def on_case_event(session: AsyncSession, event: EventEnvelope[Any]) -> None:
    """Meets the first-response clock when an agent first acts on the case, and pauses,
    resumes or stops the SLA clocks as the case's customer-visible state says."""
    settings = get_settings()
    if event.event_type in FIRST_RESPONSE_EVENTS:
        await service.record_first_response(
            session, complaint_id=event.complaint_id, at=event.occurred_at, settings=settings
        )
    state = _visible_state(event.payload)
    if state is None:
        return
    await service.apply_case_state(
        session,
        complaint_id=event.complaint_id,
        case_state=state,
        at=event.occurred_at,
        settings=settings,
    )


def _visible_state(payload: EventPayload) -> str | None:
    state = getattr(payload, "customer_visible_state", None) or getattr(payload, "status", None)
    return state if isinstance(state, str) else None


async def on_sla_timer(session: AsyncSession, timer: Timer) -> None:
    """Announces a complaint's due SLA warnings, breaches and escalations."""
    await service.fire_sla_timer(session, timer, settings=get_settings())


# Every resolution event whose payload carries the case's customer-visible state (older ones
# call it `status`): a case event added to the contracts with that field is handled as it lands.
CASE_STATE_EVENTS: tuple[str, ...] = tuple(
    cls.event_type
    for cls in PAYLOAD_CLASSES
    if cls.topic is Topic.RESOLUTION_CASE
    and {"customer_visible_state", "status"} & set(cls.model_fields)
)
# The case events that mean an agent acted on the complaint: the first of them is its first
# response (the customer hears of it through notification). Opening and assigning a case are
# automatic and do not count. Only types the contracts know are subscribed.
FIRST_RESPONSE_EVENT_TYPES = frozenset(
    {
        "case.investigation_started",
        "case.merchant_verification_requested",
        "case.remedy_proposed",
        "case.remedy_offered",
        "case.rejected",
        "case.resolved",
    }
)
FIRST_RESPONSE_EVENTS: tuple[str, ...] = tuple(
    cls.event_type
    for cls in PAYLOAD_CLASSES
    if cls.topic is Topic.RESOLUTION_CASE and cls.event_type in FIRST_RESPONSE_EVENT_TYPES
)

SUBSCRIPTIONS: dict[Topic, dict[str, Handler]] = {
    Topic.INTAKE_COMPLAINT: {
        ComplaintReceived.event_type: on_complaint_received,
        ComplaintWithdrawn.event_type: on_complaint_withdrawn,
        CustomerErased.event_type: on_customer_erased,
    },
    Topic.RESOLUTION_CASE: dict.fromkeys(CASE_STATE_EVENTS + FIRST_RESPONSE_EVENTS, on_case_event),
}

TIMER_HANDLERS: dict[str, TimerHandler] = {service.SLA_TIMER: on_sla_timer}
