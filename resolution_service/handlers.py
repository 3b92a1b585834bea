"""Resolution's Kafka handlers: plain functions of (session, event)."""

from sqlalchemy.ext.asyncio import AsyncSession

from resolution_service import service
from shared.events import ComplaintTriaged, EventEnvelope, Topic
from shared.messaging import Handler


async def on_complaint_triaged(
    session: AsyncSession, event: EventEnvelope[ComplaintTriaged]
) -> None:
    """Opens (or updates) the case of a triaged complaint."""
    await service.open_case(session, event)


SUBSCRIPTIONS: dict[Topic, dict[str, Handler]] = {
    Topic.TRIAGE_COMPLAINT: {ComplaintTriaged.event_type: on_complaint_triaged},
}
