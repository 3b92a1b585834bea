"""The service runtime: retention, readiness when dependencies are down, relay retries."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from intake_service.config import Settings as IntakeSettings
from intake_service.main import SPEC as INTAKE_SPEC
from intake_service.models import idempotency_keys
from services.catalog import BY_NAME
from shared.events import Topic, dlq_topic
from shared.messaging import ensure_topics
from shared.messaging import metrics as messaging_metrics
from shared.messaging.kafka import delete_topics
from shared.runtime import ServiceRuntime, ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from shared.time import utcnow
from tests.support.auth import STOREFRONT
from tests.support.complaints import complaint_body
from tests.support.messaging import MessagingSchema, messaging_schema, probe_event, record_effect
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
                            caller="anonymous",
                            key=key,
                            request_fingerprint="f",
                            expires_at=expires,
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


class TestDatabaseDownOverHttp:
    async def test_a_request_while_the_database_is_down_is_a_503_problem_not_a_crash(self):
        # Nothing listens on port 1: every request's first statement fails to connect.
        settings = IntakeSettings(
            database_url="postgresql+asyncpg://intake:intake_local@127.0.0.1:1/complaints",
            kafka_bootstrap_servers="127.0.0.1:1",
        )
        app = create_service_app(INTAKE_SPEC, settings)  # lifespan not run: nothing connects
        # raise_app_exceptions: an error the app re-raises (what Starlette does after a
        # handler registered for plain Exception) would fail this request outright.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            response = await client.post(
                "/v1/complaints", json=complaint_body(1), headers=STOREFRONT.headers()
            )
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        assert "nothing was stored" in response.json()["detail"]


class Crash(BaseException):
    """Escapes every `except Exception`: the consumer task itself dies."""


class CrashingHandler:
    """Kills the consumer task from inside on its first `crashes` calls, then applies."""

    def __init__(self, db: MessagingSchema, crashes: int) -> None:
        self.db = db
        self.crashes = crashes
        self.calls = 0

    async def __call__(self, session: Any, event: Any) -> None:
        self.calls += 1
        if self.calls <= self.crashes:
            raise Crash(f"consumer task crash #{self.calls}")
        await record_effect(session, self.db.effects, event)


@pytest.fixture
async def probe_topics(stack: StackUnderTest) -> AsyncIterator[str]:
    prefix = f"sup-{uuid.uuid4().hex[:8]}."
    topic = f"{prefix}{Topic.INTAKE_COMPLAINT.value}"
    await ensure_topics(stack.config.kafka_bootstrap, [topic, dlq_topic(topic)], partitions=2)
    yield prefix
    await delete_topics(stack.config.kafka_bootstrap, [topic, dlq_topic(topic)])


def subscribed_runtime(
    db: MessagingSchema, stack: StackUnderTest, prefix: str, handler: Any, **overrides: Any
) -> ServiceRuntime:
    spec = ServiceSpec(
        name=f"probe-{uuid.uuid4().hex[:6]}",
        schema=db.schema,
        outbox=db.outbox,
        inbox=db.inbox,
        subscriptions={Topic.INTAKE_COMPLAINT: {"probe.recorded": handler}},
    )
    settings = ServiceSettings(
        database_url=stack.admin_sqlalchemy_url(),
        kafka_bootstrap_servers=stack.config.kafka_bootstrap,
        topic_prefix=prefix,
        kafka_session_timeout_ms=6000,
        **overrides,
    )
    return ServiceRuntime(spec, settings)


class TestSupervision:
    async def test_a_consumer_task_that_dies_is_replaced_and_applies_the_event_once(
        self, db, stack, probe_topics
    ):
        handler = CrashingHandler(db, crashes=2)
        runtime = subscribed_runtime(db, stack, probe_topics, handler)
        restarts = messaging_metrics.BACKGROUND_TASK_RESTARTS.labels("consumer")
        before = restarts._value.get()
        event = probe_event(uuid.uuid4(), 1)
        async with db.sessionmaker() as session, session.begin():
            await db.outbox.add(session, event)
        await runtime.start()
        try:
            await wait_until(
                lambda: db.count(db.effects, event_id=event.event_id),
                timeout_s=60,
                what="effect after the consumer was replaced twice",
            )
            assert runtime.liveness() is None
        finally:
            await runtime.stop()
        assert restarts._value.get() - before == 2
        assert await db.count(db.effects) == 1
        assert runtime.fatal is None

    async def test_a_task_that_keeps_dying_fails_liveness_and_asks_to_exit(
        self, db, stack, probe_topics, monkeypatch
    ):
        monkeypatch.setattr("shared.runtime.TASK_RESTART_LIMIT", 2)
        handler = CrashingHandler(db, crashes=1000)
        runtime = subscribed_runtime(db, stack, probe_topics, handler)
        exits: list[str] = []
        runtime.on_fatal = lambda: exits.append("exit")
        async with db.sessionmaker() as session, session.begin():
            await db.outbox.add(session, probe_event(uuid.uuid4(), 1))
        app = create_service_app(runtime.spec, runtime.settings)
        app.state.runtime = runtime
        await runtime.start()
        try:
            await wait_until(lambda: _fatal(runtime), timeout_s=60, what="giving up")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:
                alive = await client.get("/healthz")
                ready = await client.get("/readyz")
        finally:
            await runtime.stop()
        assert exits == ["exit"]
        assert alive.status_code == 503
        assert "consumer died 3 times" in alive.json()["detail"]
        assert ready.status_code == 503
        assert await db.count(db.effects) == 0


class TestOutboxReadiness:
    async def test_readiness_fails_while_the_oldest_unpublished_event_is_too_old(self, db, stack):
        runtime = runtime_on(db, stack, outbox_ready_max_age_seconds=30)
        await runtime.start()
        try:
            assert (await runtime.check_ready())["outbox"] == "ok"
            # An event for a topic the broker does not have can never be published.
            async with db.sessionmaker() as session, session.begin():
                event = probe_event(uuid.uuid4(), 1)
                await session.execute(
                    insert(db.outbox.table).values(
                        event_id=event.event_id,
                        event_type=event.event_type,
                        topic=f"nowhere-{uuid.uuid4().hex[:6]}",
                        message_key="k",
                        headers=[],
                        body="{}",
                        created_at=utcnow() - timedelta(minutes=2),
                    )
                )
            checks = await runtime.check_ready()
        finally:
            await runtime.stop()
        assert checks["outbox"].startswith("stale: oldest unpublished event is")
        age = messaging_metrics.OUTBOX_OLDEST_AGE.labels(db.schema)._value.get()
        assert age >= 119


async def _fatal(runtime: ServiceRuntime) -> bool:
    return runtime.fatal is not None
