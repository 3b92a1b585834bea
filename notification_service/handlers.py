"""Notification's Kafka handlers: plain functions of (session, event)."""

from sqlalchemy.ext.asyncio import AsyncSession

from notification_service import service
from notification_service.config import get_settings
from shared.events import CaseOpened, ComplaintReceived, CustomerErased, EventEnvelope, Topic
from shared.messaging import Handler


async def on_complaint_received(
    session: AsyncSession, event: EventEnvelope[ComplaintReceived]
) -> None:
    """Keeps the customer's sealed contact for this complaint."""
    await service.register_recipient(session, event, settings=get_settings())


async def on_customer_erased(session: AsyncSession, event: EventEnvelope[CustomerErased]) -> None:
    """Forgets the erased customer's contact for this complaint."""
    await service.erase_customer(session, event)


async def on_case_opened(session: AsyncSession, event: EventEnvelope[CaseOpened]) -> None:
    """Records the acknowledgement the customer is owed."""
    await service.acknowledge_case(session, event)


SUBSCRIPTIONS: dict[Topic, dict[str, Handler]] = {
    Topic.INTAKE_COMPLAINT: {
        ComplaintReceived.event_type: on_complaint_received,
        CustomerErased.event_type: on_customer_erased,
    },
    Topic.RESOLUTION_CASE: {CaseOpened.event_type: on_case_opened},
}
