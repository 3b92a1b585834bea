"""The triage service's ASGI app."""

from fastapi import FastAPI

from shared.runtime import ServiceSpec, create_service_app
from triage_service.config import get_settings
from triage_service.handlers import SUBSCRIPTIONS
from triage_service.models import SCHEMA, inbox, outbox, timers
from triage_service.router import router

SPEC = ServiceSpec(
    name="triage",
    schema=SCHEMA,
    outbox=outbox,
    timers=timers,
    inbox=inbox,
    subscriptions=SUBSCRIPTIONS,
    routers=[router],
    description="Classifies and prioritises complaints and sets their first-response deadline.",
)


def create_app() -> FastAPI:
    """Builds the triage app from the environment's settings."""
    return create_service_app(SPEC, get_settings())


app = create_app()
