"""Triage's Kafka handlers: plain functions of (session, event)."""

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import ComplaintReceived, EventEnvelope, Topic
from shared.messaging import Handler
from triage_service import service
from triage_service.config import get_settings


async def on_complaint_received(
    session: AsyncSession, event: EventEnvelope[ComplaintReceived]
) -> None:
    """Triages a newly received complaint."""
    await service.triage_complaint(session, event, settings=get_settings())


SUBSCRIPTIONS: dict[Topic, dict[str, Handler]] = {
    Topic.INTAKE_COMPLAINT: {ComplaintReceived.event_type: on_complaint_received},
}
