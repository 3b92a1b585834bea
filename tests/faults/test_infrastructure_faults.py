"""Real infrastructure faults while complaints flow: nothing lost, doubled or dead-lettered."""

import asyncio

import asyncpg
import httpx
import pytest

from tests.faults.conftest import REQUEST_TIMEOUT_MS, Faulty
from tests.faults.flow import (
    Storefront,
    assert_each_complaint_handled_exactly_once,
    wait_until_accepted,
)
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e, pytest.mark.faults]

RATE_PER_S = 10
COMPLAINTS = 120
SERVICE_ROLES = ("intake", "triage", "resolution", "notification")


async def _readiness(url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(f"{url}/readyz")).status_code


async def test_a_broker_outage_longer_than_the_request_timeout_heals_by_itself(faulty: Faulty):
    storefront = Storefront(faulty.platform.url("intake"), label="broker-outage")
    flow = asyncio.create_task(storefront.run(COMPLAINTS, RATE_PER_S))
    await wait_until_accepted(storefront, 20)
    await asyncio.to_thread(faulty.infra.kafka.down)
    # Intake keeps accepting complaints into its outbox; readiness tells the truth.
    outage_s = 3 * REQUEST_TIMEOUT_MS / 1000
    accepted_before = len(storefront.accepted)
    await asyncio.sleep(outage_s)
    assert len(storefront.accepted) > accepted_before, "intake stops accepting while Kafka is down"
    assert await _readiness(faulty.platform.url("intake")) == 503
    await asyncio.to_thread(faulty.infra.kafka.up)
    ids = await flow
    await assert_each_complaint_handled_exactly_once(faulty.stack, ids)

    async def ready_again() -> bool:
        codes = [await _readiness(faulty.platform.url(name)) for name in SERVICE_ROLES]
        return all(code == 200 for code in codes)

    await wait_until(ready_again, timeout_s=60, interval_s=0.5, what="every service ready again")


async def test_a_postgres_restart_while_complaints_flow_loses_and_doubles_nothing(
    faulty: Faulty,
):
    storefront = Storefront(faulty.platform.url("intake"), label="pg-restart")
    flow = asyncio.create_task(storefront.run(COMPLAINTS, RATE_PER_S))
    await wait_until_accepted(storefront, 20)
    await asyncio.to_thread(faulty.infra.postgres.restart)
    await wait_until_accepted(storefront, 60)
    await asyncio.to_thread(faulty.infra.postgres.restart)
    ids = await flow
    await assert_each_complaint_handled_exactly_once(faulty.stack, ids)
    assert storefront.retries > 0, "the restarts must have hit requests in flight"


async def test_terminated_backends_and_a_role_without_connections_lose_nothing(faulty: Faulty):
    storefront = Storefront(faulty.platform.url("intake"), label="starved")
    flow = asyncio.create_task(storefront.run(COMPLAINTS, RATE_PER_S))
    await wait_until_accepted(storefront, 20)
    admin = await asyncpg.connect(faulty.stack.admin_dsn())
    try:
        # Cut every service connection (admin shutdown, SQLSTATE 57P01)...
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1)",
            list(SERVICE_ROLES),
        )
        await wait_until_accepted(storefront, 50)
        # ...then let triage and notification open none at all (53300) for a while.
        for role in ("triage", "notification"):
            await admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1)",
            ["triage", "notification"],
        )
        await asyncio.sleep(6)  # the outage lasts this long
    finally:
        for role in ("triage", "notification"):
            await admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
        await admin.close()
    ids = await flow
    await assert_each_complaint_handled_exactly_once(faulty.stack, ids)
