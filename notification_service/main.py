"""The notification service's ASGI app."""

from fastapi import FastAPI

from notification_service.config import get_settings
from notification_service.handlers import SUBSCRIPTIONS
from notification_service.models import SCHEMA, inbox, outbox, timers
from notification_service.router import router
from shared.runtime import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="notification",
    schema=SCHEMA,
    outbox=outbox,
    timers=timers,
    inbox=inbox,
    subscriptions=SUBSCRIPTIONS,
    routers=[router],
    description="Keeps the customer informed: acknowledgements, progress, surveys.",
)


def create_app() -> FastAPI:
    """Builds the notification app from the environment's settings."""
    return create_service_app(SPEC, get_settings())


app = create_app()
