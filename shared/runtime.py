"""One lifespan for every service: engine, producer, outbox relay and consumers."""

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaError
from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth.app import app_options, install_access, operations_guard
from shared.auth.settings import get_auth_settings
from shared.db import create_engine, create_sessionmaker
from shared.errors import install_problem_handlers
from shared.events.topics import Topic, qualified_topic
from shared.messaging import metrics
from shared.messaging.consumer import EventConsumer, Handler, RetryPolicy
from shared.messaging.kafka import check_inbox_outlives_topics, create_consumer, create_producer
from shared.messaging.outbox import Outbox, OutboxRelay
from shared.messaging.producer import ProducerHandle
from shared.messaging.retention import purge_inbox, purge_published_outbox
from shared.observability import configure_logging
from shared.settings import ServiceSettings
from shared.time import utcnow
from shared.timers import TimerHandler, TimerWorker, purge_finished_timers
from shared.web import CorrelationMiddleware, operations_router

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 90.0
# A background task that dies more often than this within the window is not going to
# recover by restarting in place: the process reports itself dead and exits non-zero.
TASK_RESTART_LIMIT = 5
TASK_RESTART_WINDOW_S = 300.0
EXIT_CODE_TASK_FAILED = 70  # EX_SOFTWARE
# Set by the launcher (and the test harness) to its own pid: see _exit_when_orphaned.
SUPERVISOR_PID_ENV = "COMPLAINTS_SUPERVISOR_PID"


MaintenanceJob = Callable[[AsyncSession, datetime], Awaitable[int]]
StartupJob = Callable[[AsyncSession], Awaitable[None]]
ExceptionHandler = Callable[[Request, Any], Awaitable[Response]]


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
    # Exception class -> handler, for errors whose answer needs more than a problem document.
    exception_handlers: Mapping[type[Exception], ExceptionHandler] = field(default_factory=dict)
    description: str = ""
    # Extra housekeeping run with the outbox/inbox retention (e.g. expired idempotency keys).
    maintenance: Sequence[MaintenanceJob] = ()
    # The schema's durable timers and their handlers (timer kind -> handler).
    timers: Table | None = None
    timer_handlers: Mapping[str, TimerHandler] = field(default_factory=dict)
    # Run once the database answers and before any event, timer or request is handled (e.g.
    # training a model from stored data); each in its own transaction.
    startup: Sequence[StartupJob] = ()


class ServiceRuntime:
    """Owns the connections and background tasks of one service process."""

    def __init__(self, spec: ServiceSpec, settings: ServiceSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            application_name=f"{spec.name}-service",
            ssl=settings.db_ssl,
        )
        self.sessionmaker = create_sessionmaker(self.engine)
        # aiokafka clients bind to the running loop: they are made in start().
        self._producer: ProducerHandle | None = None
        self._relay: OutboxRelay | None = None
        self.timer_worker: TimerWorker | None = None
        self.consumer: EventConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # name -> monotonic times it died recently; name -> "running" / "restarting: ..."
        self._deaths: dict[str, deque[float]] = {}
        self.task_states: dict[str, str] = {}
        # Set when a background task keeps dying: liveness fails and the process exits.
        self.fatal: str | None = None
        self.on_fatal: Callable[[], None] = lambda: os.kill(os.getpid(), signal.SIGTERM)

    @property
    def group_id(self) -> str:
        """The Kafka consumer group (and inbox consumer name) of this service."""
        return self.settings.consumer_group or f"{self.spec.name}-service"

    @property
    def producer(self) -> ProducerHandle:
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
        self._producer = ProducerHandle(
            lambda: create_producer(
                settings.kafka_bootstrap_servers,
                client_id=f"{spec.name}-service",
                request_timeout_ms=settings.kafka_request_timeout_ms,
                security=settings.kafka_client_options(),
            ),
            name=spec.name,
        )
        self._relay = OutboxRelay(
            sessionmaker=self.sessionmaker,
            table=spec.outbox.table,
            producer=self._producer,
            topic_prefix=settings.topic_prefix,
            batch_size=settings.relay_batch_size,
            poll_interval_s=settings.relay_poll_interval_seconds,
            send_timeout_s=settings.kafka_request_timeout_ms / 1000 + 5,
            drain_timeout_s=settings.relay_drain_timeout_seconds,
            coalesce_s=settings.relay_coalesce_ms / 1000,
            name=spec.name,
            listen_url=settings.database_url,
        )
        await self._wait_for_database()
        for job in spec.startup:
            async with self.sessionmaker() as session, session.begin():
                await job(session)
        await _start_with_retry(self.producer.start, "kafka producer")
        self.spec.outbox.on_commit(self.relay.wake)
        self._spawn(self.relay.run, "outbox-relay")
        self._spawn(self._maintenance_loop, "maintenance")
        if spec.timers is not None:
            self.timer_worker = TimerWorker(
                sessionmaker=self.sessionmaker,
                table=spec.timers,
                handlers=spec.timer_handlers,
                batch_size=settings.timer_batch_size,
                poll_interval_s=settings.timer_poll_interval_seconds,
                name=spec.name,
                concurrency=settings.timer_concurrency,
            )
            self._spawn(self.timer_worker.run, "timer-worker")
        supervisor = os.environ.get(SUPERVISOR_PID_ENV)
        if supervisor:
            self._spawn(lambda: _exit_when_orphaned(int(supervisor)), "supervisor-watch")
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
            inbox: Table = self.spec.inbox

            def make_consumer() -> EventConsumer:
                return EventConsumer(
                    name=self.group_id,
                    group_id=self.group_id,
                    consumer=create_consumer(
                        self.settings.kafka_bootstrap_servers,
                        group_id=self.group_id,
                        client_id=f"{self.spec.name}-service",
                        session_timeout_ms=self.settings.kafka_session_timeout_ms,
                        rebalance_timeout_ms=self.settings.kafka_rebalance_timeout_ms,
                        max_poll_records=self.settings.consumer_max_records_per_poll,
                        fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
                        fetch_min_bytes=self.settings.consumer_fetch_min_bytes,
                        security=self.settings.kafka_client_options(),
                    ),
                    topics=topics,
                    handlers=handlers,
                    sessionmaker=self.sessionmaker,
                    inbox=inbox,
                    dlq_producer=self.producer,
                    retry=RetryPolicy(
                        max_attempts=self.settings.consumer_max_attempts,
                        backoff_s=self.settings.consumer_retry_backoff_seconds,
                        max_backoff_s=self.settings.consumer_retry_backoff_max_seconds,
                    ),
                    max_records_per_poll=self.settings.consumer_max_records_per_poll,
                    commit_interval_s=self.settings.consumer_commit_interval_ms / 1000,
                )

            first = make_consumer()
            await _start_with_retry(first.start, "kafka consumer")
            self.consumer = first
            self._spawn(lambda: self._consume(make_consumer), "consumer")
        logger.info("service started", extra={"group_id": self.group_id})

    async def _consume(self, make_consumer: Callable[[], EventConsumer]) -> None:
        """Runs one consumer until stopped; after a crash the supervisor calls this again.

        A crashed consumer's fetch positions may be past records it never applied, so it
        is never resumed: a new one rejoins the group from the committed offsets.
        """
        consumer = self.consumer
        if consumer is None or consumer.finished:
            consumer = make_consumer()
            await _start_with_retry(consumer.start, "kafka consumer")
            self.consumer = consumer
        try:
            await consumer.run()
        finally:
            if not self._stopping:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(timeout_s=0), 15)

    async def stop(self) -> None:
        """Graceful shutdown: finish the event in hand, publish what is committed, close."""
        self._stopping = True
        # First no new effects (consumer), then publish everything committed (relay drain),
        # and only then close the producer both of them use.
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.consumer.stop(), 30)
        if self.timer_worker is not None:
            # Finishes the timer in hand before the relay drains, so its event goes out too.
            self.timer_worker.stop()
            await self._await_task("timer-worker", 15)
        if self._relay is not None:
            self._relay.stop()
            self.spec.outbox.remove_listener(self._relay.wake)
        for task in self._tasks:
            if task.get_name() in ("maintenance", "supervisor-watch"):
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
                await asyncio.wait_for(task, self.settings.relay_drain_timeout_seconds + 10)
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
        await self.engine.dispose()
        logger.info("service stopped")

    async def _await_task(self, name: str, timeout_s: float) -> None:
        for task in self._tasks:
            if task.get_name() == name:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), timeout_s)

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
            producer = self._producer.current()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), 2)
            checks["kafka"] = "ok"
        except Exception as exc:
            checks["kafka"] = f"error: {type(exc).__name__}"
        checks["workers"] = self.liveness() or "ok"
        checks["outbox"] = await self._outbox_check()
        return checks

    def liveness(self) -> str | None:
        """None when every background task runs; otherwise what is dead or restarting."""
        if self.fatal:
            return f"fatal: {self.fatal}"
        unwell = [
            f"{name} {state}"
            for name, state in sorted(self.task_states.items())
            if state != "running"
        ]
        return "; ".join(unwell) or None

    async def _outbox_check(self) -> str:
        if self._relay is None:
            return "error: not started"
        try:
            age = await asyncio.wait_for(self._relay.oldest_unpublished_age_s(), 2)
        except Exception as exc:
            return f"error: {type(exc).__name__}"
        metrics.OUTBOX_OLDEST_AGE.labels(self.spec.schema).set(age)
        limit = self.settings.outbox_ready_max_age_seconds
        if age > limit:
            return f"stale: oldest unpublished event is {age:.0f}s old (limit {limit:.0f}s)"
        return "ok"

    async def refresh_gauges(self) -> None:
        """Updates gauges that are measured on demand (outbox backlog)."""
        if self._relay is None:
            return
        with contextlib.suppress(Exception):
            backlog = await asyncio.wait_for(self._relay.backlog(), 2)
            metrics.OUTBOX_BACKLOG.labels(self.spec.schema).set(backlog)
        with contextlib.suppress(Exception):
            age = await asyncio.wait_for(self._relay.oldest_unpublished_age_s(), 2)
            metrics.OUTBOX_OLDEST_AGE.labels(self.spec.schema).set(age)

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
            if self.spec.timers is not None:
                done["timers"] = await purge_finished_timers(
                    session,
                    self.spec.timers,
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

    def _spawn(self, factory: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        """Runs a background task under supervision: restarted with backoff if it dies."""
        task = asyncio.create_task(self._supervise(factory, name), name=name)
        task.add_done_callback(_log_task_end)
        self._tasks.append(task)

    async def _supervise(self, factory: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        loop = asyncio.get_running_loop()
        deaths = self._deaths.setdefault(name, deque())
        delay = 0.5
        while True:
            self.task_states[name] = "running"
            started = loop.time()
            try:
                await factory()
            except asyncio.CancelledError:
                self.task_states[name] = "stopped"
                raise
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # a crash from inside the task, whatever its class
                error: BaseException = exc
            else:
                if self._stopping:
                    self.task_states[name] = "stopped"
                    return
                error = RuntimeError(f"{name} returned while the service runs")
            if self._stopping:
                self.task_states[name] = "stopped"
                return
            now = loop.time()
            deaths.append(now)
            while deaths and now - deaths[0] > TASK_RESTART_WINDOW_S:
                deaths.popleft()
            metrics.BACKGROUND_TASK_RESTARTS.labels(name).inc()
            logger.error("background task %s died: %r", name, error, exc_info=error)
            if len(deaths) > TASK_RESTART_LIMIT:
                self._give_up(f"{name} died {len(deaths)} times in {TASK_RESTART_WINDOW_S:.0f}s")
                self.task_states[name] = "failed"
                return
            if now - started > 60:
                delay = 0.5  # it ran fine for a while: start the backoff afresh
            self.task_states[name] = f"restarting after {type(error).__name__}"
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _give_up(self, reason: str) -> None:
        """Marks the process dead (liveness 503) and asks for a non-zero exit."""
        self.fatal = reason
        logger.critical("giving up: %s; exiting so the supervisor restarts the process", reason)
        self.on_fatal()


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
            if runtime.fatal:
                # uvicorn exits 0 after SIGTERM; a supervisor must see that this was a failure.
                logging.shutdown()
                os._exit(EXIT_CODE_TASK_FAILED)

    auth = get_auth_settings()
    auth.check_for(settings.environment)
    protect_operations = auth.operations_protected(settings.environment)
    app = FastAPI(
        title=f"{spec.name} service",
        description=spec.description,
        version="0.1.0",
        lifespan=lifespan,
        **app_options(protect_operations),
    )
    app.state.runtime = runtime
    install_access(
        app,
        schema=spec.schema,
        sessionmaker=runtime.sessionmaker,
        settings=auth,
        protect_operations=protect_operations,
        body_limits_by_path_prefix=settings.body_limits_by_path_prefix(),
    )
    app.add_middleware(CorrelationMiddleware, service=spec.name)
    install_problem_handlers(app)
    app.include_router(operations_router(metrics_guard=operations_guard(protect_operations)))
    for exception_class, handler in spec.exception_handlers.items():
        app.add_exception_handler(exception_class, handler)
    for router in spec.routers:
        app.include_router(router)
    return app
