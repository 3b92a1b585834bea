"""Triage's Kafka handlers: plain functions of (session, event)."""

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import ComplaintReceived, CustomerErased, EventEnvelope, Topic
from shared.messaging import Handler
from triage_service import service
from triage_service.config import get_settings


async def on_complaint_received(
    session: AsyncSession, event: EventEnvelope[ComplaintReceived]
) -> None:
    """Triages a newly received complaint."""
    await service.triage_complaint(session, event, settings=get_settings())


async def on_customer_erased(session: AsyncSession, event: EventEnvelope[CustomerErased]) -> None:
    """Replaces the erased customer's id on this complaint with a pseudonym."""
    await service.erase_customer(session, event)


SUBSCRIPTIONS: dict[Topic, dict[str, Handler]] = {
    Topic.INTAKE_COMPLAINT: {
        ComplaintReceived.event_type: on_complaint_received,
        CustomerErased.event_type: on_customer_erased,
    },
}
