"""The intake service's ASGI app."""

from fastapi import FastAPI

from intake_service import service
from intake_service.config import get_settings
from intake_service.models import SCHEMA, outbox, timers
from intake_service.router import replay_idempotent_response, router
from shared.runtime import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="intake",
    schema=SCHEMA,
    outbox=outbox,
    timers=timers,
    routers=[router],
    exception_handlers={service.IdempotencyKeyTakenError: replay_idempotent_response},
    maintenance=[service.purge_expired_idempotency_keys],
    description="Accepts complaints (受理), numbers them and gives the customer a receipt.",
)


def create_app() -> FastAPI:
    """Builds the intake app from the environment's settings."""
    return create_service_app(SPEC, get_settings())


app = create_app()
