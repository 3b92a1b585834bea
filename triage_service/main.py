"""The triage service's ASGI app."""

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from shared.runtime import ServiceSpec, create_service_app
from triage_service import service
from triage_service.config import get_settings
from triage_service.handlers import SUBSCRIPTIONS, TIMER_HANDLERS
from triage_service.models import SCHEMA, inbox, outbox, timers
from triage_service.router import classifier_router, queues_router, router


async def train_classifier(session: AsyncSession) -> None:
    """Trains the classifier before the first complaint arrives."""
    await service.train_classifier(session)


SPEC = ServiceSpec(
    name="triage",
    schema=SCHEMA,
    outbox=outbox,
    timers=timers,
    timer_handlers=TIMER_HANDLERS,
    inbox=inbox,
    subscriptions=SUBSCRIPTIONS,
    routers=[router, queues_router, classifier_router],
    startup=[train_classifier],
    description="Classifies complaints, sets their priority, responsibility and owning team, "
    "and runs their SLA clocks (warnings, breaches, escalation).",
)


def create_app() -> FastAPI:
    """Builds the triage app from the environment's settings."""
    return create_service_app(SPEC, get_settings())


app = create_app()
