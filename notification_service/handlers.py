"""Notification's Kafka handlers and timer handlers: plain functions of (session, event|timer)."""

from functools import cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from notification_service import service
from notification_service.channels.registry import ChannelSet, build_channels
from notification_service.config import get_settings
from shared.events import (
    CaseAssigned,
    CaseClosed,
    CaseOpened,
    CaseRejected,
    CaseRemedyOffered,
    CaseResolved,
    CaseWithdrawn,
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
    Topic,
)
from shared.messaging import Handler
from shared.timers import Timer, TimerHandler


@cache
def get_channels() -> ChannelSet:
    """The process's channels, built on first use (inside the running event loop)."""
    return build_channels(get_settings())


async def on_complaint_received(
    session: AsyncSession, event: EventEnvelope[ComplaintReceived]
) -> None:
    """Keeps the customer's sealed contact and queues the receipt (受理回执)."""
    await service.register_recipient(session, event, settings=get_settings())
    await service.route_event(session, event, settings=get_settings())


async def on_complaint_info_requested(
    session: AsyncSession, event: EventEnvelope[ComplaintInfoRequested]
) -> None:
    """Queues the request for everything the complaint lacks."""
    await service.register_contact(session, event, settings=get_settings())
    await service.route_event(session, event, settings=get_settings())


async def on_complaint_rejected(
    session: AsyncSession, event: EventEnvelope[ComplaintRejected]
) -> None:
    """Queues the rejection with its reason and where the customer can still turn."""
    await service.register_contact(session, event, settings=get_settings())
    await service.route_event(session, event, settings=get_settings())


async def on_customer_erased(session: AsyncSession, event: EventEnvelope[CustomerErased]) -> None:
    """Forgets the erased customer's contact for this complaint; nothing more is sent."""
    await service.erase_customer(session, event)
    await service.stop_progress_updates(session, event)


async def on_lifecycle_event(session: AsyncSession, event: EventEnvelope[Any]) -> None:
    """Queues what the routing rules say an event tells whom (withdrawn, triaged, SLA...)."""
    await service.route_event(session, event, settings=get_settings())


async def on_complaint_triaged(
    session: AsyncSession, event: EventEnvelope[ComplaintTriaged]
) -> None:
    """Tells the customer who handles it, and starts progress updates for its category."""
    await service.route_event(session, event, settings=get_settings())
    await service.start_progress_updates(session, event, settings=get_settings())


async def on_complaint_withdrawn(
    session: AsyncSession, event: EventEnvelope[ComplaintWithdrawn]
) -> None:
    """Confirms the withdrawal; no more progress updates."""
    await service.route_event(session, event, settings=get_settings())
    await service.stop_progress_updates(session, event)


async def on_case_over(session: AsyncSession, event: EventEnvelope[Any]) -> None:
    """A case closed, rejected or withdrawn: no more progress updates; the customer hears of a
    rejection (the rules route only what customers are told)."""
    await service.route_event(session, event, settings=get_settings())
    await service.stop_progress_updates(session, event)


async def on_case_opened(session: AsyncSession, event: EventEnvelope[CaseOpened]) -> None:
    """Records the acknowledgement the customer is owed, remembers the case, queues its message."""
    await service.acknowledge_case(session, event)
    await service.record_case(session, event)
    await service.route_event(session, event, settings=get_settings())


async def on_case_assigned(session: AsyncSession, event: EventEnvelope[CaseAssigned]) -> None:
    """Remembers the assignee (for later SLA alerts) and tells them of their new case."""
    await service.record_assignment(session, event)
    await service.route_event(session, event, settings=get_settings())


async def on_case_resolved(session: AsyncSession, event: EventEnvelope[CaseResolved]) -> None:
    """Tells the customer and the merchant the outcome, and schedules the case's survey."""
    await service.route_event(session, event, settings=get_settings())
    await service.stop_progress_updates(session, event)
    await service.survey_resolved_case(session, event, settings=get_settings())


async def on_deliver(session: AsyncSession, timer: Timer) -> None:
    """Sends one message of the delivery log (a first try, a retry, or a delayed send)."""
    await service.deliver(session, timer, settings=get_settings(), channels=get_channels())


async def on_survey_invite(session: AsyncSession, timer: Timer) -> None:
    """Sends a case's survey link."""
    await service.invite_to_survey(session, timer, settings=get_settings())


async def on_survey_remind(session: AsyncSession, timer: Timer) -> None:
    """Sends the one reminder of an unanswered survey."""
    await service.remind_of_survey(session, timer, settings=get_settings())


async def on_progress(session: AsyncSession, timer: Timer) -> None:
    """Sends a complaint's next progress update."""
    await service.send_progress_update(session, timer, settings=get_settings())


SUBSCRIPTIONS: dict[Topic, dict[str, Handler]] = {
    Topic.INTAKE_COMPLAINT: {
        ComplaintReceived.event_type: on_complaint_received,
        ComplaintInfoRequested.event_type: on_complaint_info_requested,
        ComplaintRejected.event_type: on_complaint_rejected,
        ComplaintWithdrawn.event_type: on_complaint_withdrawn,
        ComplaintLinkedDuplicate.event_type: on_lifecycle_event,
        CustomerErased.event_type: on_customer_erased,
    },
    Topic.TRIAGE_COMPLAINT: {
        ComplaintTriaged.event_type: on_complaint_triaged,
        ComplaintSlaWarning.event_type: on_lifecycle_event,
        ComplaintSlaBreached.event_type: on_lifecycle_event,
    },
    Topic.RESOLUTION_CASE: {
        CaseOpened.event_type: on_case_opened,
        CaseAssigned.event_type: on_case_assigned,
        CaseRemedyOffered.event_type: on_lifecycle_event,
        CaseResolved.event_type: on_case_resolved,
        CaseClosed.event_type: on_case_over,
        CaseRejected.event_type: on_case_over,
        CaseWithdrawn.event_type: on_case_over,
    },
}

TIMER_HANDLERS: dict[str, TimerHandler] = {
    service.DELIVER_TIMER: on_deliver,
    service.SURVEY_INVITE_TIMER: on_survey_invite,
    service.SURVEY_REMIND_TIMER: on_survey_remind,
    service.PROGRESS_TIMER: on_progress,
}
