"""The service runtime: retention, readiness when dependencies are down, relay retries."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import insert, select

from intake_service.config import Settings as IntakeSettings
from intake_service.main import SPEC as INTAKE_SPEC
from intake_service.models import idempotency_keys
from services.catalog import BY_NAME
from shared.events import Topic, dlq_topic
from shared.messaging import OutboxRelay, create_producer, ensure_topics
from shared.messaging import metrics as messaging_metrics
from shared.messaging.kafka import delete_topics
from shared.runtime import ServiceRuntime, ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from shared.time import utcnow
from tests.support.kafka import read_all
from tests.support.messaging import MessagingSchema, messaging_schema, probe_event
from tests.support.stack import StackUnderTest
from tests.support.waiting import wait_until

pytestmark = pytest.mark.stack


@pytest.fixture
async def db(stack: StackUnderTest) -> AsyncIterator[MessagingSchema]:
    async with messaging_schema(stack.admin_sqlalchemy_url()) as schema:
        yield schema


def runtime_on(db: MessagingSchema, stack: StackUnderTest, **overrides: Any) -> ServiceRuntime:
    spec = ServiceSpec(name="probe", schema=db.schema, outbox=db.outbox, inbox=db.inbox)
    settings = ServiceSettings(
        database_url=stack.admin_sqlalchemy_url(),
        kafka_bootstrap_servers=stack.config.kafka_bootstrap,
        **overrides,
    )
    return ServiceRuntime(spec, settings)


class TestRetention:
    async def test_purges_old_published_outbox_rows_and_old_inbox_rows_only(self, db, stack):
        now = utcnow()
        rows = {
            "old_published": (now - timedelta(hours=80), now - timedelta(hours=73)),
            "recent_published": (now - timedelta(hours=2), now - timedelta(hours=1)),
            "old_unpublished": (now - timedelta(days=30), None),
        }
        async with db.sessionmaker() as session, session.begin():
            for name, (created, published) in rows.items():
                event = probe_event(uuid.uuid4(), 1)
                await session.execute(
                    insert(db.outbox.table).values(
                        event_id=event.event_id,
                        event_type=name,
                        topic="t",
                        message_key="k",
                        headers=[],
                        body="{}",
                        created_at=created,
                        published_at=published,
                    )
                )
            for age_days in (15, 1):
                await session.execute(
                    insert(db.inbox).values(
                        consumer=f"age-{age_days}",
                        event_id=uuid.uuid4(),
                        event_type="x",
                        processed_at=now - timedelta(days=age_days),
                    )
                )
        runtime = runtime_on(db, stack)
        try:
            done = await runtime.run_maintenance(now)
        finally:
            await runtime.engine.dispose()
        assert done == {"outbox": 1, "inbox": 1}
        async with db.sessionmaker() as session:
            kept = set((await session.scalars(select(db.outbox.table.c.event_type))).all())
            inbox_left = set((await session.scalars(select(db.inbox.c.consumer))).all())
        assert kept == {"recent_published", "old_unpublished"}, "never delete unpublished events"
        assert inbox_left == {"age-1"}

    async def test_intake_forgets_expired_idempotency_keys_after_24h(self, stack):
        now = utcnow()
        expired, fresh = f"expired-{uuid.uuid4()}", f"fresh-{uuid.uuid4()}"
        settings = IntakeSettings(
            database_url=stack.config.service_database_url(BY_NAME["intake"]),
            kafka_bootstrap_servers=stack.config.kafka_bootstrap,
        )
        runtime = ServiceRuntime(INTAKE_SPEC, settings)
        try:
            async with runtime.sessionmaker() as session, session.begin():
                for key, expires in (
                    (expired, now - timedelta(minutes=1)),
                    (fresh, now + timedelta(hours=23)),
                ):
                    await session.execute(
                        insert(idempotency_keys).values(
                            key=key, request_fingerprint="f", expires_at=expires
                        )
                    )
            done = await runtime.run_maintenance(now)
            async with runtime.sessionmaker() as session:
                left = set(
                    (
                        await session.scalars(
                            select(idempotency_keys.c.key).where(
                                idempotency_keys.c.key.in_([expired, fresh])
                            )
                        )
                    ).all()
                )
        finally:
            await runtime.engine.dispose()
        assert done["purge_expired_idempotency_keys"] >= 1
        assert left == {fresh}


class TestReadiness:
    async def test_readyz_is_a_503_problem_naming_what_is_down(self, db, stack):
        spec = ServiceSpec(name="probe", schema=db.schema, outbox=db.outbox)
        settings = ServiceSettings(
            database_url="postgresql+asyncpg://nobody:nothing@127.0.0.1:1/none",
            kafka_bootstrap_servers="127.0.0.1:1",
        )
        app = create_service_app(spec, settings)  # lifespan not run: nothing is connected
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            alive = await client.get("/healthz")
            ready = await client.get("/readyz")
        assert alive.status_code == 200, "alive even when dependencies are down"
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        checks = ready.json()["checks"]
        assert checks["database"].startswith("error")
        assert checks["kafka"].startswith("error")


class FlakyProducer:
    """A real producer whose first sends fail as if the broker were unreachable."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real = real
        self.failures = failures

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise KafkaConnectionError("broker unreachable (simulated)")
        return await self.real.send(*args, **kwargs)


class TestRelayRetries:
    async def test_relay_keeps_retrying_until_the_broker_is_back(self, db, stack):
        prefix = f"retry-{uuid.uuid4().hex[:8]}."
        topic = f"{prefix}{Topic.INTAKE_COMPLAINT.value}"
        await ensure_topics(stack.config.kafka_bootstrap, [topic, dlq_topic(topic)], partitions=1)
        real = create_producer(stack.config.kafka_bootstrap, client_id="flaky")
        await real.start()
        relay = OutboxRelay(
            sessionmaker=db.sessionmaker,
            table=db.outbox.table,
            producer=FlakyProducer(real, failures=3),  # type: ignore[arg-type]
            topic_prefix=prefix,
            poll_interval_s=0.05,
            max_backoff_s=0.5,
        )
        failures_before = messaging_metrics.RELAY_FAILURES.labels(db.schema)._value.get()
        async with db.sessionmaker() as session, session.begin():
            await db.outbox.add(session, probe_event(uuid.uuid4(), 1))
        task = asyncio.create_task(relay.run())
        try:
            await wait_until(lambda: _drained(relay), timeout_s=20, what="published after retries")
        finally:
            relay.stop()
            await asyncio.wait_for(task, 10)
            await real.stop()
        failures = messaging_metrics.RELAY_FAILURES.labels(db.schema)._value.get() - failures_before
        assert failures == 3
        assert len(await read_all(stack.config.kafka_bootstrap, topic)) == 1
        await delete_topics(stack.config.kafka_bootstrap, [topic, dlq_topic(topic)])


async def _drained(relay: OutboxRelay) -> bool:
    return await relay.backlog() == 0
