"""The generic consumer loop: inbox dedupe, commit after effects, retries, dead letters."""

import asyncio
import contextlib
import logging
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, IllegalStateError, KafkaError
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.events.envelope import EventEnvelope
from shared.events.registry import UndecodableEventError, decode_payload, parse_envelope
from shared.events.topics import dlq_topic
from shared.messaging import metrics
from shared.messaging.headers import header_value
from shared.messaging.inbox import claim_event
from shared.observability import log_context
from shared.time import utcnow

logger = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, EventEnvelope[Any]], Awaitable[None]]


class _StopRequestedError(Exception):
    """Raised inside a batch when stop() was asked while waiting out an outage."""


def is_infrastructure_error(exc: BaseException) -> bool:
    """True for failures of the platform (database unreachable), not of the message.

    Such failures block the partition and retry without counting attempts: dead-lettering
    every message during a database outage would be far worse than waiting.
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | DisconnectionError | OSError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing handler is retried before dead-lettering."""

    max_attempts: int = 5
    backoff_s: float = 0.1
    max_backoff_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff for the given (1-based) failed attempt."""
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


class _CommitBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Waits for the batch in hand and commits it before partitions move elsewhere."""

    def __init__(self, owner: "EventConsumer") -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.owner.processing_lock:
            await self.owner.commit_pending()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        logger.info(
            "partitions assigned",
            extra={"consumer": self.owner.name, "partitions": [str(tp) for tp in assigned]},
        )


class EventConsumer:
    """Consumes topics for one service: one transaction per event, committed offsets after."""

    def __init__(
        self,
        *,
        name: str,
        consumer: AIOKafkaConsumer,
        topics: list[str],
        handlers: Mapping[str, Handler],
        sessionmaker: async_sessionmaker[AsyncSession],
        inbox: Table,
        dlq_producer: AIOKafkaProducer,
        retry: RetryPolicy | None = None,
        group_id: str = "",
    ) -> None:
        self.name = name
        self.consumer = consumer
        self.topics = topics
        self.handlers = dict(handlers)
        self.sessionmaker = sessionmaker
        self.inbox = inbox
        self.dlq_producer = dlq_producer
        self.retry = retry or RetryPolicy()
        self.group_id = group_id or name
        self.processing_lock = asyncio.Lock()
        self._pending_offsets: dict[TopicPartition, int] = {}
        self._stopping = False
        # handled / duplicate / ignored / dead_lettered, for this process's lifetime
        self.outcomes: Counter[str] = Counter()

    async def start(self) -> None:
        """Joins the group and subscribes."""
        self.consumer.subscribe(self.topics, listener=_CommitBeforeRevoke(self))
        await self.consumer.start()

    async def run(self) -> None:
        """Consumes until stopped; never lets one bad message stop the loop."""
        while not self._stopping:
            try:
                batches = await self.consumer.getmany(timeout_ms=500, max_records=200)
            except ConsumerStoppedError:
                return
            except KafkaError:
                logger.exception("fetch failed", extra={"consumer": self.name})
                await asyncio.sleep(1.0)
                continue
            if not batches:
                continue
            async with self.processing_lock:
                # On a stop during an outage the unfinished record is not committed: it is
                # redelivered after the restart.
                with contextlib.suppress(_StopRequestedError):
                    await self._process_batches(batches)
                await self.commit_pending()

    async def _process_batches(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        for tp, records in batches.items():
            for record in records:
                if tp not in self.consumer.assignment():
                    break  # revoked while we waited: the new owner takes it
                try:
                    await self.process(record)
                except _StopRequestedError:
                    raise
                except Exception:
                    # A bug outside the handler (the handler's own errors are retried and
                    # dead-lettered in process()). Re-read this record later, keep the loop.
                    logger.exception("unexpected consumer error", extra={"consumer": self.name})
                    self.consumer.seek(tp, record.offset)
                    await asyncio.sleep(1.0)
                    break
                self._pending_offsets[tp] = record.offset + 1
            self._record_lag(tp)

    def _record_lag(self, tp: TopicPartition) -> None:
        highwater = self.consumer.highwater(tp)
        position = self._pending_offsets.get(tp)
        if highwater is not None and position is not None:
            metrics.CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(
                max(highwater - position, 0)
            )

    async def stop(self) -> None:
        """Finishes the batch in hand, commits it, and leaves the group."""
        self._stopping = True
        async with self.processing_lock:
            await self.commit_pending()
        await self.consumer.stop()

    async def commit_pending(self) -> None:
        """Commits offsets of records whose effects are already committed in Postgres."""
        if not self._pending_offsets:
            return
        offsets = {
            tp: offset
            for tp, offset in self._pending_offsets.items()
            if tp in self.consumer.assignment()
        }
        self._pending_offsets.clear()
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # The group moved on without us; the next owner re-reads these records and
            # the inbox turns them into no-ops. Duplicate delivery, never a lost effect.
            logger.warning("offset commit failed: %s", exc, extra={"consumer": self.name})

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Handles one record: decode, dedupe, apply with retries, or dead-letter it."""
        try:
            raw = parse_envelope(record.value)
        except UndecodableEventError as exc:
            await self.dead_letter(record, exc, attempts=0)
            return
        handler = self.handlers.get(raw.event_type)
        if handler is None:
            # Readers ignore event types they do not handle (additive evolution).
            metrics.EVENTS_HANDLED.labels(self.name, raw.event_type, "ignored").inc()
            self.outcomes["ignored"] += 1
            return
        with log_context(
            complaint_id=raw.complaint_id,
            correlation_id=raw.correlation_id,
            traceparent=header_value(record.headers, "traceparent"),
        ):
            try:
                event = decode_payload(raw)
            except UndecodableEventError as exc:
                await self.dead_letter(record, exc, attempts=0)
                return
            await self._apply_with_retries(record, event, handler)

    async def _apply_with_retries(
        self, record: ConsumerRecord[bytes, bytes], event: EventEnvelope[Any], handler: Handler
    ) -> None:
        attempt = 0
        outage_delay = self.retry.backoff_s or 0.1
        while attempt < self.retry.max_attempts:
            try:
                outcome = await self._apply_once(event, handler)
            except Exception as exc:
                if is_infrastructure_error(exc):
                    if self._stopping:
                        raise _StopRequestedError from exc
                    logger.warning(
                        "infrastructure unavailable, retrying without counting: %r",
                        exc,
                        extra={"consumer": self.name, "event_type": event.event_type},
                    )
                    await asyncio.sleep(outage_delay)
                    outage_delay = min(outage_delay * 2, 5.0)
                    continue
                attempt += 1
                logger.warning(
                    "handler failed (attempt %d/%d): %r",
                    attempt,
                    self.retry.max_attempts,
                    exc,
                    extra={"consumer": self.name, "event_type": event.event_type},
                )
                if attempt == self.retry.max_attempts:
                    await self.dead_letter(record, exc, attempts=attempt)
                    return
                await asyncio.sleep(self.retry.delay(attempt))
            else:
                metrics.EVENTS_HANDLED.labels(self.name, event.event_type, outcome).inc()
                self.outcomes[outcome] += 1
                logger.info(
                    "event %s",
                    outcome,
                    extra={"consumer": self.name, "event_type": event.event_type},
                )
                return

    async def _apply_once(self, event: EventEnvelope[Any], handler: Handler) -> str:
        async with self.sessionmaker() as session, session.begin():
            fresh = await claim_event(
                session,
                self.inbox,
                consumer=self.name,
                event_id=event.event_id,
                event_type=event.event_type,
            )
            if not fresh:
                return "duplicate"
            await handler(session, event)
        return "handled"

    async def dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: BaseException, *, attempts: int
    ) -> None:
        """Publishes the record unchanged to `<topic>.dlq` with the error; waits for the ack."""
        headers = [
            *(record.headers or ()),
            ("dlq.error", f"{type(error).__name__}: {error}"[:2000].encode()),
            ("dlq.traceback", "".join(traceback.format_exception(error))[-4000:].encode()),
            ("dlq.original_topic", record.topic.encode()),
            ("dlq.original_partition", str(record.partition).encode()),
            ("dlq.original_offset", str(record.offset).encode()),
            ("dlq.consumer", self.name.encode()),
            ("dlq.consumer_group", self.group_id.encode()),
            ("dlq.attempts", str(attempts).encode()),
            ("dlq.failed_at", utcnow().isoformat().encode()),
        ]
        target = dlq_topic(record.topic)
        delay = 0.5
        while True:
            try:
                await self.dlq_producer.send_and_wait(
                    target, value=record.value, key=record.key, headers=headers
                )
                break
            except KafkaError:
                # Never drop it: without the DLQ write the offset must not move on.
                logger.exception("dead-letter publish failed; retrying", extra={"topic": target})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        metrics.EVENTS_DEAD_LETTERED.labels(self.name, record.topic).inc()
        self.outcomes["dead_lettered"] += 1
        logger.error(
            "message dead-lettered: %s",
            error,
            extra={
                "consumer": self.name,
                "dlq_topic": target,
                "partition": record.partition,
                "offset": record.offset,
            },
        )
