"""Transactional outbox: events are rows written with the state change, published later."""

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.hooks import call_after_commit
from shared.db.statements import execute
from shared.events.envelope import EventEnvelope
from shared.events.topics import qualified_topic
from shared.messaging import metrics
from shared.messaging.headers import event_headers
from shared.messaging.producer import ProducerHandle, ProducerUnavailableError
from shared.observability import current_traceparent

logger = logging.getLogger(__name__)


def notify_channel(table: Table) -> str:
    """The Postgres NOTIFY channel on which an outbox announces new rows to every replica."""
    return f"outbox_{table.schema or 'public'}"


def outbox_table(metadata: MetaData) -> Table:
    """Defines `<schema>.outbox` on a service's MetaData."""
    table = Table(
        "outbox",
        metadata,
        # The identity gives the publish order; per-complaint order follows from it
        # because each complaint's writes are serialised by its aggregate row lock.
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("event_type", Text, nullable=False),
        Column("topic", Text, nullable=False),
        Column("message_key", Text, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("publish_attempts", Integer, nullable=False, server_default=text("0")),
    )
    Index(
        "ix_outbox_unpublished",
        table.c.id,
        postgresql_where=table.c.published_at.is_(None),
    )
    return table


_INSERTED_COLUMNS = ("event_id", "event_type", "topic", "message_key", "headers", "body")


class Outbox:
    """Writes events into one service's outbox inside the caller's transaction."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.channel = notify_channel(table)
        self._listeners: list[Callable[[], None]] = []
        # One statement, one round trip: the row and the NOTIFY that wakes the publishing
        # relay in any replica (delivered on commit only; Postgres folds repeats within a
        # transaction). Built once, so SQLAlchemy's compiled cache serves every call.
        notified = select(func.pg_notify(bindparam("notify_channel"), "")).subquery("notified")
        self._insert = insert(table).from_select(
            list(_INSERTED_COLUMNS),
            select(
                *(bindparam(name, type_=table.c[name].type) for name in _INSERTED_COLUMNS)
            ).select_from(notified),
        )

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Registers a callback run after any transaction that added outbox rows commits."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Unregisters a callback added with `on_commit`."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    async def add(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        """Adds one event; it is published only if the surrounding transaction commits."""
        headers = event_headers(envelope, traceparent=current_traceparent())
        await execute(
            session,
            self._insert,
            {
                "notify_channel": self.channel,
                "event_id": envelope.event_id,
                "event_type": envelope.event_type,
                "topic": envelope.payload.topic.value,
                "message_key": str(envelope.complaint_id),
                "headers": [[key, value.decode()] for key, value in headers],
                "body": envelope.model_dump_json(),
            },
        )
        for listener in self._listeners:
            call_after_commit(session.sync_session, listener)


def relay_lock_key(schema: str) -> int:
    """A stable advisory-lock key per outbox: one publishing relay at a time per schema."""
    return zlib.crc32(f"outbox-relay:{schema}".encode())


@dataclass
class SendOutcome:
    """Which rows of a batch the broker acknowledged, and the first failure if any."""

    published_ids: list[int]
    failure: BaseException | None


def publishable_prefix(rows: Sequence[Any], acked: Callable[[Any], bool]) -> list[int]:
    """Ids of acked rows that no unacked earlier row of the same key precedes.

    Marking a later row of a key while an earlier one is unsent would publish that
    complaint's events out of order once the earlier row is retried.
    """
    blocked: set[str] = set()
    published: list[int] = []
    for row in rows:
        if row.message_key in blocked:
            continue
        if acked(row):
            published.append(row.id)
        else:
            blocked.add(row.message_key)
    return published


class RelaySendError(Exception):
    """Some rows of a batch were not acknowledged; the producer is replaced before retrying."""


class OutboxRelay:
    """Publishes unpublished outbox rows in id order, then marks them published.

    Only the replica holding the schema's advisory lock publishes, so per-complaint
    order holds with any number of replicas; the others take over when it dies.
    A crash between send and mark republishes the batch: a duplicate, never a loss.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        table: Table,
        producer: ProducerHandle,
        topic_prefix: str = "",
        batch_size: int = 200,
        poll_interval_s: float = 0.25,
        max_backoff_s: float = 30.0,
        send_timeout_s: float = 35.0,
        drain_timeout_s: float = 10.0,
        coalesce_s: float = 0.0,
        name: str = "relay",
        listen_url: str | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.table = table
        self.producer = producer
        self.topic_prefix = topic_prefix
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.max_backoff_s = max_backoff_s
        self.send_timeout_s = send_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self.coalesce_s = coalesce_s
        self.name = name
        self.lock_key = relay_lock_key(table.schema or "public")
        # asyncpg DSN for LISTEN; None: only in-process wake-ups and polling.
        self.listen_url = (
            make_url(listen_url).set(drivername="postgresql").render_as_string(hide_password=False)
            if listen_url
            else None
        )
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self.consecutive_failures = 0
        self._seen_generation = 0

    def wake(self) -> None:
        """Asks the relay to look for new rows now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Publishes until stopped, then drains what is committed; errors are retried."""
        listener = asyncio.create_task(self._listen())
        try:
            await self._publish_loop()
            await self._drain()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self) -> None:
        """Holds its own LISTEN connection; reconnects after failures (polling covers gaps)."""
        if not self.listen_url:
            return
        channel = notify_channel(self.table)
        while not self._stopping:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(self.listen_url, timeout=10)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                logger.warning("outbox LISTEN connection failed; polling meanwhile")
                await asyncio.sleep(2.0)
                continue
            try:
                connection.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await connection.add_listener(channel, self._on_notify)
                stopping = asyncio.create_task(self._stopped.wait())
                closed = asyncio.create_task(lost.wait())
                await asyncio.wait({stopping, closed}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                closed.cancel()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                logger.warning("outbox LISTEN connection lost; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=5)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _publish_loop(self) -> None:
        while not self._stopping:
            published = await self._publish_or_back_off()
            if published is None:
                continue
            if published < self.batch_size:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
                if self.coalesce_s and not self._stopping:
                    # Let the commits of the next few milliseconds join this batch: one
                    # transaction and one produce request for many rows instead of one each.
                    await asyncio.sleep(self.coalesce_s)

    async def _publish_or_back_off(self) -> int | None:
        """One pass; on failure: replace the producer, back off, and return None."""
        try:
            published = await self.publish_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.consecutive_failures += 1
            delay = min(self.max_backoff_s, 0.2 * 2 ** min(self.consecutive_failures, 10))
            logger.warning("outbox relay %s failed (%r); retrying in %.1fs", self.name, exc, delay)
            metrics.RELAY_FAILURES.labels(self.table.schema).inc()
            broker_failure = isinstance(exc, RelaySendError | ProducerUnavailableError)
            if broker_failure:
                with contextlib.suppress(Exception):
                    await self.producer.reset(seen_generation=self._seen_generation)
            # After a database failure, a commit (in this process, or NOTIFY from another)
            # proves the database is back: retry then instead of sleeping out the backoff. A
            # commit says nothing about the broker, so a broker failure waits the full delay.
            self._wake.clear()
            await self._sleep_unless_stopping(delay, wake_early=not broker_failure)
            return None
        self.consecutive_failures = 0
        return published

    async def _sleep_unless_stopping(self, delay: float, *, wake_early: bool = False) -> None:
        waits = [asyncio.ensure_future(self._stopped.wait())]
        if wake_early:
            waits.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _drain(self) -> None:
        """After stop: publishes everything committed so far, within `drain_timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout_s
        while loop.time() < deadline:
            try:
                published = await asyncio.wait_for(
                    self.publish_once(), max(deadline - loop.time(), 0.1)
                )
            except (TimeoutError, Exception) as exc:
                logger.warning("outbox relay %s could not drain: %r", self.name, exc)
                return
            if published == 0 and await self.backlog() == 0:
                return
            if published == 0:
                # Another replica holds the publishing lock; it will publish the rest.
                return

    def stop(self) -> None:
        """Asks `run` to stop: it drains committed rows (bounded in time) and returns."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    async def publish_once(self) -> int:
        """Publishes one batch in a single transaction; returns how many rows it published.

        Rows the broker acknowledged are marked even when others failed (unless an earlier
        row of the same key failed); then RelaySendError reports the failure.
        """
        async with self.sessionmaker() as session, session.begin():
            locked = await session.scalar(select(func.pg_try_advisory_xact_lock(self.lock_key)))
            if not locked:
                return 0
            rows = (
                await session.execute(
                    select(self.table)
                    .where(self.table.c.published_at.is_(None))
                    .order_by(self.table.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            outcome = await self._send(rows)
            if outcome.published_ids:
                await self._mark_published(session, outcome.published_ids)
        metrics.OUTBOX_PUBLISHED.labels(self.table.schema).inc(len(outcome.published_ids))
        if outcome.failure is not None:
            raise RelaySendError(
                f"{len(rows) - len(outcome.published_ids)} of {len(rows)} rows not published: "
                f"{outcome.failure!r}"
            ) from outcome.failure
        return len(outcome.published_ids)

    async def _send(self, rows: Sequence[Any]) -> SendOutcome:
        # send() enqueues in call order; the idempotent producer keeps that order per
        # partition through its own retries. Then wait (bounded) for the broker's acks.
        self._seen_generation = self.producer.generation
        producer = self.producer.current()
        futures: dict[int, asyncio.Future[Any]] = {}
        failure: BaseException | None = None
        failed_keys: set[str] = set()
        for row in rows:
            if row.message_key in failed_keys:
                continue
            try:
                futures[row.id] = await asyncio.wait_for(
                    producer.send(
                        qualified_topic(row.topic, self.topic_prefix),
                        value=row.body.encode(),
                        key=row.message_key.encode(),
                        headers=[(key, value.encode()) for key, value in row.headers],
                    ),
                    self.send_timeout_s,
                )
            except (KafkaError, TimeoutError) as exc:
                failure = failure or exc
                failed_keys.add(row.message_key)
                if not isinstance(exc, UnknownTopicOrPartitionError):
                    break  # the producer or broker is at fault, not this row's topic
        if futures:
            _done, pending = await asyncio.wait(futures.values(), timeout=self.send_timeout_s)
            for future in pending:
                future.cancel()
            if pending and failure is None:
                failure = TimeoutError(f"{len(pending)} sends unacknowledged")

        def acked(row: Any) -> bool:
            future = futures.get(row.id)
            return (
                future is not None
                and future.done()
                and not future.cancelled()
                and future.exception() is None
            )

        for future in futures.values():
            if future.done() and not future.cancelled() and future.exception() is not None:
                failure = failure or future.exception()
        return SendOutcome(publishable_prefix(rows, acked), failure)

    async def _mark_published(self, session: AsyncSession, ids: list[int]) -> None:
        await session.execute(
            update(self.table)
            .where(self.table.c.id.in_(ids))
            .values(published_at=func.now(), publish_attempts=self.table.c.publish_attempts + 1)
        )

    async def backlog(self) -> int:
        """Counts rows not yet published (for /metrics and tests)."""
        async with self.sessionmaker() as session:
            count = await session.scalar(
                select(func.count()).where(self.table.c.published_at.is_(None))
            )
        return int(count or 0)

    async def oldest_unpublished_age_s(self) -> float:
        """Seconds since the oldest unpublished row was written (0 when there is none)."""
        async with self.sessionmaker() as session:
            age = await session.scalar(
                select(func.extract("epoch", func.now() - self.table.c.created_at))
                .where(self.table.c.published_at.is_(None))
                .order_by(self.table.c.id)
                .limit(1)
            )
        return float(age or 0.0)
