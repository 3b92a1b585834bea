"""Intake's Kafka handlers: the other services' events feed the customer's view."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from intake_service import service
from intake_service.domain.customer_view import VIEW_RULES
from shared.events import EventEnvelope, Topic
from shared.messaging import Handler


async def on_view_event(session: AsyncSession, event: EventEnvelope[Any]) -> None:
    """Adds the event's step to the complaint's timeline and moves its visible state."""
    await service.apply_event_to_view(session, event)


# Subscribed per event type the customer's view knows; others are skipped from their headers.
SUBSCRIPTIONS: dict[Topic, dict[str, Handler]] = {
    Topic.TRIAGE_COMPLAINT: {"complaint.triaged": on_view_event},
    Topic.RESOLUTION_CASE: {
        event_type: on_view_event for event_type in VIEW_RULES if event_type.startswith("case.")
    },
    Topic.NOTIFICATION_DELIVERY: {"acknowledgement.recorded": on_view_event},
}
