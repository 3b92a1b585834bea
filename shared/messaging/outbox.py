"""Transactional outbox: events are rows written with the state change, published later."""

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
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
from shared.events.envelope import EventEnvelope
from shared.events.topics import qualified_topic
from shared.messaging import metrics
from shared.messaging.headers import event_headers
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


class Outbox:
    """Writes events into one service's outbox inside the caller's transaction."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.channel = notify_channel(table)
        self._listeners: list[Callable[[], None]] = []

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
        await session.execute(
            insert(self.table).values(
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                topic=envelope.payload.topic.value,
                message_key=str(envelope.complaint_id),
                headers=[[key, value.decode()] for key, value in headers],
                body=envelope.model_dump_json(),
            )
        )
        # Delivered on commit only (and once per transaction): wakes the publishing relay
        # even when it runs in another replica.
        await session.execute(select(func.pg_notify(self.channel, "")))
        for listener in self._listeners:
            call_after_commit(session.sync_session, listener)


def relay_lock_key(schema: str) -> int:
    """A stable advisory-lock key per outbox: one publishing relay at a time per schema."""
    return zlib.crc32(f"outbox-relay:{schema}".encode())


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
        producer: AIOKafkaProducer,
        topic_prefix: str = "",
        batch_size: int = 200,
        poll_interval_s: float = 0.25,
        max_backoff_s: float = 30.0,
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

    def wake(self) -> None:
        """Asks the relay to look for new rows now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Publishes forever; errors are retried with exponential backoff."""
        listener = asyncio.create_task(self._listen())
        try:
            await self._publish_loop()
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
            except (OSError, asyncpg.PostgresError):
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
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=5)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _publish_loop(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                published = await self.publish_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                delay = min(self.max_backoff_s, 0.2 * 2 ** min(failures, 10))
                logger.exception("outbox relay %s failed; retrying in %.1fs", self.name, delay)
                metrics.RELAY_FAILURES.labels(self.table.schema).inc()
                await asyncio.sleep(delay)
                continue
            if published < self.batch_size:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)

    def stop(self) -> None:
        """Lets `run` finish after its current batch."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    async def publish_once(self) -> int:
        """Publishes one batch in a single transaction; returns how many rows it published."""
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
            await self._send(rows)
            await self._mark_published(session, [row.id for row in rows])
        metrics.OUTBOX_PUBLISHED.labels(self.table.schema).inc(len(rows))
        return len(rows)

    async def _send(self, rows: Sequence[Any]) -> None:
        # send() enqueues in call order; the idempotent producer keeps that order per
        # partition through its own retries. Then wait until the broker acked them all.
        pending = []
        for row in rows:
            pending.append(
                await self.producer.send(
                    qualified_topic(row.topic, self.topic_prefix),
                    value=row.body.encode(),
                    key=row.message_key.encode(),
                    headers=[(key, value.encode()) for key, value in row.headers],
                )
            )
        await asyncio.gather(*pending)

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
