"""The notification service's ASGI app."""

from fastapi import FastAPI

from notification_service.config import get_settings
from notification_service.handlers import SUBSCRIPTIONS, TIMER_HANDLERS
from notification_service.models import SCHEMA, inbox, outbox, timers
from notification_service.router import (
    customers_router,
    merchants_router,
    router,
    staff_router,
    surveys_router,
    templates_router,
)
from shared.runtime import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="notification",
    schema=SCHEMA,
    outbox=outbox,
    timers=timers,
    timer_handlers=TIMER_HANDLERS,
    inbox=inbox,
    subscriptions=SUBSCRIPTIONS,
    routers=[
        router,
        merchants_router,
        customers_router,
        templates_router,
        surveys_router,
        staff_router,
    ],
    description="Keeps customers, merchants and staff informed on real channels.",
)


def create_app() -> FastAPI:
    """Builds the notification app from the environment's settings."""
    return create_service_app(SPEC, get_settings())


app = create_app()
