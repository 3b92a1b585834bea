"""One lifespan for every service: engine, producer, outbox relay and consumers."""

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from fastapi import APIRouter, FastAPI
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import create_engine, create_sessionmaker
from shared.errors import install_problem_handlers
from shared.events.topics import Topic, qualified_topic
from shared.messaging import metrics
from shared.messaging.consumer import EventConsumer, Handler, RetryPolicy
from shared.messaging.kafka import check_inbox_outlives_topics, create_consumer, create_producer
from shared.messaging.outbox import Outbox, OutboxRelay
from shared.messaging.retention import purge_inbox, purge_published_outbox
from shared.observability import configure_logging
from shared.settings import ServiceSettings
from shared.time import utcnow
from shared.timers import TimerHandler, TimerWorker
from shared.web import CorrelationMiddleware, operations_router

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 90.0
# Set by the launcher (and the test harness) to its own pid: see _exit_when_orphaned.
SUPERVISOR_PID_ENV = "COMPLAINTS_SUPERVISOR_PID"


MaintenanceJob = Callable[[AsyncSession, datetime], Awaitable[int]]


@dataclass(frozen=True)
class ServiceSpec:
    """What makes a service itself: its schema, outbox, inbox, handlers and routes."""

    name: str
    schema: str
    outbox: Outbox
    inbox: Table | None = None
    # topic -> {event_type: handler}; event types without a handler are ignored
    subscriptions: Mapping[Topic, Mapping[str, Handler]] = field(default_factory=dict)
    routers: Sequence[APIRouter] = ()
    description: str = ""
    # Extra housekeeping run with the outbox/inbox retention (e.g. expired idempotency keys).
    maintenance: Sequence[MaintenanceJob] = ()
    # The schema's durable timers and their handlers (timer kind -> handler).
    timers: Table | None = None
    timer_handlers: Mapping[str, TimerHandler] = field(default_factory=dict)


class ServiceRuntime:
    """Owns the connections and background tasks of one service process."""

    def __init__(self, spec: ServiceSpec, settings: ServiceSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            application_name=f"{spec.name}-service",
        )
        self.sessionmaker = create_sessionmaker(self.engine)
        # aiokafka clients bind to the running loop: they are made in start().
        self._producer: AIOKafkaProducer | None = None
        self._relay: OutboxRelay | None = None
        self.timer_worker: TimerWorker | None = None
        self.consumer: EventConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def group_id(self) -> str:
        """The Kafka consumer group (and inbox consumer name) of this service."""
        return self.settings.consumer_group or f"{self.spec.name}-service"

    @property
    def producer(self) -> AIOKafkaProducer:
        """The service's idempotent producer (outbox relay and dead letters)."""
        if self._producer is None:
            raise RuntimeError("runtime not started")
        return self._producer

    @property
    def relay(self) -> OutboxRelay:
        """The service's outbox relay."""
        if self._relay is None:
            raise RuntimeError("runtime not started")
        return self._relay

    async def start(self) -> None:
        """Connects to Postgres and Kafka (waiting for them), then starts relay and consumer."""
        settings, spec = self.settings, self.spec
        self._producer = create_producer(
            settings.kafka_bootstrap_servers, client_id=f"{spec.name}-service"
        )
        self._relay = OutboxRelay(
            sessionmaker=self.sessionmaker,
            table=spec.outbox.table,
            producer=self._producer,
            topic_prefix=settings.topic_prefix,
            batch_size=settings.relay_batch_size,
            poll_interval_s=settings.relay_poll_interval_seconds,
            name=spec.name,
            listen_url=settings.database_url,
        )
        await self._wait_for_database()
        await _start_with_retry(self.producer.start, "kafka producer")
        self.spec.outbox.on_commit(self.relay.wake)
        self._spawn(self.relay.run(), "outbox-relay")
        self._spawn(self._maintenance_loop(), "maintenance")
        if spec.timers is not None:
            self.timer_worker = TimerWorker(
                sessionmaker=self.sessionmaker,
                table=spec.timers,
                handlers=spec.timer_handlers,
                batch_size=settings.timer_batch_size,
                poll_interval_s=settings.timer_poll_interval_seconds,
                name=spec.name,
            )
            self._spawn(self.timer_worker.run(), "timer-worker")
        supervisor = os.environ.get(SUPERVISOR_PID_ENV)
        if supervisor:
            self._spawn(_exit_when_orphaned(int(supervisor)), "supervisor-watch")
        if self.spec.subscriptions:
            if self.spec.inbox is None:
                raise RuntimeError(f"{self.spec.name} subscribes to topics but has no inbox")
            handlers: dict[str, Handler] = {}
            for topic_handlers in self.spec.subscriptions.values():
                handlers.update(topic_handlers)
            topics = [
                qualified_topic(topic.value, self.settings.topic_prefix)
                for topic in self.spec.subscriptions
            ]
            # Refuse to run when a redelivery could outlive the inbox row that dedupes it.
            await check_inbox_outlives_topics(
                settings.kafka_bootstrap_servers,
                topics,
                inbox_retention_hours=settings.inbox_retention_hours,
            )
            consumer = EventConsumer(
                name=self.group_id,
                group_id=self.group_id,
                consumer=create_consumer(
                    self.settings.kafka_bootstrap_servers,
                    group_id=self.group_id,
                    client_id=f"{self.spec.name}-service",
                    session_timeout_ms=self.settings.kafka_session_timeout_ms,
                ),
                topics=topics,
                handlers=handlers,
                sessionmaker=self.sessionmaker,
                inbox=self.spec.inbox,
                dlq_producer=self.producer,
                retry=RetryPolicy(
                    max_attempts=self.settings.consumer_max_attempts,
                    backoff_s=self.settings.consumer_retry_backoff_seconds,
                    max_backoff_s=self.settings.consumer_retry_backoff_max_seconds,
                ),
            )
            await _start_with_retry(consumer.start, "kafka consumer")
            self.consumer = consumer
            self._spawn(consumer.run(), "consumer")
        logger.info("service started", extra={"group_id": self.group_id})

    async def stop(self) -> None:
        """Graceful shutdown: finish the event in hand, publish what is committed, close."""
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.consumer.stop(), 30)
        if self.timer_worker is not None:
            # Finishes the timer in hand; an event it adds after the relay's drain waits
            # in the outbox for the next start, never lost.
            self.timer_worker.stop()
        if self._relay is not None:
            self._relay.stop()
            self.spec.outbox.remove_listener(self._relay.wake)
        for task in self._tasks:
            if task.get_name() in ("maintenance", "supervisor-watch"):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
                await asyncio.wait_for(task, 15)
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
        await self.engine.dispose()
        logger.info("service stopped")

    async def check_ready(self) -> dict[str, str]:
        """Checks the database, the broker and the background tasks."""
        checks: dict[str, str] = {}
        try:
            async with self.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            if self._producer is None:
                raise RuntimeError("not started")
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2)
            checks["kafka"] = "ok"
        except Exception as exc:
            checks["kafka"] = f"error: {type(exc).__name__}"
        dead = [task.get_name() for task in self._tasks if task.done()]
        checks["workers"] = "ok" if not dead else f"stopped: {','.join(dead)}"
        return checks

    async def refresh_gauges(self) -> None:
        """Updates gauges that are measured on demand (outbox backlog)."""
        if self._relay is None:
            return
        with contextlib.suppress(Exception):
            backlog = await asyncio.wait_for(self._relay.backlog(), 2)
            metrics.OUTBOX_BACKLOG.labels(self.spec.schema).set(backlog)

    async def run_maintenance(self, now: datetime | None = None) -> dict[str, int]:
        """Applies retention once; every replica may run it (deletes are idempotent)."""
        now = now or utcnow()
        done: dict[str, int] = {}
        async with self.sessionmaker() as session, session.begin():
            done["outbox"] = await purge_published_outbox(
                session,
                self.spec.outbox.table,
                now=now,
                keep=timedelta(hours=self.settings.outbox_retention_hours),
            )
            if self.spec.inbox is not None:
                done["inbox"] = await purge_inbox(
                    session,
                    self.spec.inbox,
                    now=now,
                    keep=timedelta(hours=self.settings.inbox_retention_hours),
                )
            for job in self.spec.maintenance:
                done[getattr(job, "__name__", "job")] = await job(session, now)
        return done

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.maintenance_interval_seconds)
            try:
                done = await self.run_maintenance()
                if any(done.values()):
                    logger.info("retention applied", extra={"deleted": done})
            except Exception:
                logger.exception("maintenance failed; will retry next interval")

    async def _wait_for_database(self) -> None:
        async def probe() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        await _start_with_retry(probe, "database")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_task_end)
        self._tasks.append(task)


async def _exit_when_orphaned(supervisor_pid: int) -> None:
    # A supervisor killed outright cannot stop its services; without this they would keep
    # their ports and consumer-group seats. SIGTERM ourselves: the normal graceful shutdown.
    while os.getppid() == supervisor_pid:  # noqa: ASYNC110 - no event exists for "reparented"
        await asyncio.sleep(1.0)
    logger.warning("supervisor %d is gone; shutting down", supervisor_pid)
    os.kill(os.getpid(), signal.SIGTERM)


def _log_task_end(task: "asyncio.Task[None]") -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.error("background task %s died: %r", task.get_name(), exc, exc_info=exc)


async def _start_with_retry(start: Callable[[], Awaitable[Any]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT_S
    delay = 0.5
    while True:
        try:
            await start()
            return
        except (KafkaConnectionError, KafkaError, OSError, ConnectionError) as exc:
            if loop.time() > deadline:
                raise RuntimeError(f"{what} not reachable after {STARTUP_TIMEOUT_S}s") from exc
            logger.warning("%s not reachable yet (%r); retrying", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def create_service_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    """Builds a service's FastAPI app around its runtime."""
    configure_logging(spec.name, level=settings.log_level, json_lines=settings.log_json)
    runtime = ServiceRuntime(spec, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=f"{spec.name} service",
        description=spec.description,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.add_middleware(CorrelationMiddleware, service=spec.name)
    install_problem_handlers(app)
    app.include_router(operations_router())
    for router in spec.routers:
        app.include_router(router)
    return app
