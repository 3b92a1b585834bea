"""Resolution's Kafka handlers and timer handlers: unwrap, then call the service."""

from sqlalchemy.ext.asyncio import AsyncSession

from resolution_service import service
from resolution_service.config import get_settings
from shared.events import (
    ComplaintReceived,
    ComplaintRetriaged,
    ComplaintTriaged,
    ComplaintWithdrawn,
    CustomerErased,
    EventEnvelope,
    Topic,
)
from shared.messaging import Handler
from shared.timers import Timer, TimerHandler


async def on_complaint_received(
    session: AsyncSession, event: EventEnvelope[ComplaintReceived]
) -> None:
    """Keeps the storefront, the account's flags and the order's facts the case needs."""
    received = event.payload
    order = received.order
    await service.record_complaint_facts(
        session,
        service.ComplaintFacts(
            complaint_id=event.complaint_id,
            storefront_id=received.storefront_id,
            customer_id=received.customer_id,
            customer_flags=tuple(received.customer_flags),
            order_amount=order.amount if order is not None else None,
            currency=order.currency if order is not None else "CNY",
            delivered_at=(order.delivered_at if order is not None else None)
            or received.delivered_at,
            demands={demand.type: demand.amount for demand in received.demands},
            after_sales_reason=received.after_sales_reason,
            returnable_without_reason=all(
                item.returnable_without_reason for item in (order.items if order else [])
            ),
            received_at=received.received_at,
        ),
    )


async def on_complaint_triaged(
    session: AsyncSession, event: EventEnvelope[ComplaintTriaged]
) -> None:
    """Opens (or updates) the case of a triaged complaint."""
    triage = event.payload
    await service.open_case(
        session,
        service.Triage(
            complaint_id=event.complaint_id,
            complaint_number=triage.complaint_number,
            merchant_id=triage.merchant_id,
            category=triage.category,
            subcategory=triage.subcategory,
            priority=triage.priority,
            team=triage.team,
            responsibility=triage.responsibility,
            first_response_due_at=triage.first_response_due_at,
            correlation_id=event.correlation_id,
        ),
        settings=get_settings(),
        causation=event,
    )


async def on_complaint_retriaged(
    session: AsyncSession, event: EventEnvelope[ComplaintRetriaged]
) -> None:
    """Applies a re-triage to the case where it stands."""
    triage = event.payload
    await service.retriage_case(
        session,
        service.Triage(
            complaint_id=event.complaint_id,
            complaint_number=triage.complaint_number,
            merchant_id=triage.merchant_id,
            category=triage.category,
            subcategory=triage.subcategory,
            priority=triage.priority,
            team=triage.team,
            responsibility=None,
            first_response_due_at=triage.first_response_due_at,
            correlation_id=event.correlation_id,
            by=triage.retriaged_by,
            reason=triage.reason,
        ),
        settings=get_settings(),
        causation=event,
    )


async def on_complaint_withdrawn(
    session: AsyncSession, event: EventEnvelope[ComplaintWithdrawn]
) -> None:
    """The customer withdrew: the case stops (a decided case stays as it is)."""
    await service.withdraw_case(
        session,
        complaint_id=event.complaint_id,
        reason=event.payload.reason,
        settings=get_settings(),
        causation=event,
    )


async def on_customer_erased(session: AsyncSession, event: EventEnvelope[CustomerErased]) -> None:
    """Replaces the erased customer's id on this complaint with its pseudonym."""
    await service.erase_customer(
        session,
        complaint_id=event.complaint_id,
        customer_id=event.payload.customer_id,
        at=event.payload.erased_at,
    )


async def on_verification_deadline(session: AsyncSession, timer: Timer) -> None:
    """The merchant's verification deadline came."""
    await service.on_verification_timer(session, timer, get_settings())


async def on_auto_close(session: AsyncSession, timer: Timer) -> None:
    """A decided case's auto-close time came."""
    await service.on_auto_close_timer(session, timer, get_settings())


SUBSCRIPTIONS: dict[Topic, dict[str, Handler]] = {
    # Only what a case needs of intake: the facts at receipt, a withdrawal, an erasure.
    Topic.INTAKE_COMPLAINT: {
        ComplaintReceived.event_type: on_complaint_received,
        ComplaintWithdrawn.event_type: on_complaint_withdrawn,
        CustomerErased.event_type: on_customer_erased,
    },
    Topic.TRIAGE_COMPLAINT: {
        ComplaintTriaged.event_type: on_complaint_triaged,
        ComplaintRetriaged.event_type: on_complaint_retriaged,
    },
}

TIMER_HANDLERS: dict[str, TimerHandler] = {
    service.VERIFICATION_TIMER: on_verification_deadline,
    service.AUTO_CLOSE_TIMER: on_auto_close,
}
