"""The intake service's ASGI app."""

from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from intake_service import service
from intake_service.config import get_settings
from intake_service.handlers import SUBSCRIPTIONS
from intake_service.models import SCHEMA, inbox, outbox, timers
from intake_service.router import (
    customers_router,
    evidence_router,
    replay_idempotent_response,
    router,
)
from intake_service.storage import evidence_storage
from shared.runtime import ServiceSpec, create_service_app


async def purge_orphan_evidence(session: AsyncSession, now: datetime) -> int:
    """Deletes uploads no complaint took within INTAKE_EVIDENCE_UNATTACHED_MAX_AGE_HOURS."""
    max_age = timedelta(hours=get_settings().evidence_unattached_max_age_hours)
    return await service.purge_orphan_evidence(
        session, evidence_storage(), now=now, max_age=max_age
    )


SPEC = ServiceSpec(
    name="intake",
    schema=SCHEMA,
    outbox=outbox,
    timers=timers,
    inbox=inbox,
    subscriptions=SUBSCRIPTIONS,
    routers=[router, customers_router, evidence_router],
    exception_handlers={service.IdempotencyKeyTakenError: replay_idempotent_response},
    maintenance=[service.purge_expired_idempotency_keys, purge_orphan_evidence],
    description="Accepts complaints (受理), numbers and checks them, gives the customer a receipt "
    "and keeps the customer's view of each complaint.",
)


def create_app() -> FastAPI:
    """Builds the intake app from the environment's settings."""
    return create_service_app(SPEC, get_settings())


app = create_app()
