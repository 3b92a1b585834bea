"""The resolution service's ASGI app."""

from fastapi import FastAPI

from resolution_service import service
from resolution_service.config import get_settings
from resolution_service.handlers import SUBSCRIPTIONS, TIMER_HANDLERS
from resolution_service.models import SCHEMA, inbox, outbox, timers
from resolution_service.router import router
from shared.runtime import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="resolution",
    schema=SCHEMA,
    outbox=outbox,
    timers=timers,
    timer_handlers=TIMER_HANDLERS,
    maintenance=[service.purge_idempotency_keys],
    inbox=inbox,
    subscriptions=SUBSCRIPTIONS,
    routers=[router],
    description="Opens and works resolution cases; merchants consume its events.",
)


def create_app() -> FastAPI:
    """Builds the resolution app from the environment's settings."""
    return create_service_app(SPEC, get_settings())


app = create_app()
