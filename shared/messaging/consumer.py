"""The generic consumer loop: inbox dedupe, commit after effects, retries, dead letters."""

import asyncio
import contextlib
import logging
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, IllegalStateError, KafkaError
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.errors import is_transient_database_error
from shared.events.envelope import EventEnvelope
from shared.events.registry import UndecodableEventError, decode_payload, parse_envelope
from shared.events.topics import dlq_topic
from shared.messaging import metrics
from shared.messaging.headers import (
    event_type_from_headers,
    header_value,
    is_replay_for_other_group,
)
from shared.messaging.inbox import claim_event
from shared.messaging.producer import ProducerHandle, ProducerUnavailableError
from shared.observability import log_context
from shared.time import utcnow

logger = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, EventEnvelope[Any]], Awaitable[None]]

DLQ_SEND_TIMEOUT_S = 30.0


class _AbandonRecordError(Exception):
    """The record in hand is given up unapplied: the consumer stops or loses the partition.

    Its offset is not committed, so whoever owns the partition next reads it again.
    """


def is_infrastructure_error(exc: BaseException) -> bool:
    """True for failures of the platform (database unavailable), not of the message.

    Such failures block the partition and retry without counting attempts: dead-lettering
    every message during a database outage would be far worse than waiting.
    """
    return is_transient_database_error(exc)


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
    """Stops the batch in hand after its current record and commits before partitions move.

    Waiting for the whole batch (or for a database outage to end) would outlast the
    rebalance timeout: the member would be evicted and its records handled twice.
    """

    def __init__(self, owner: "EventConsumer") -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.owner.revoking.set()
        try:
            async with self.owner.processing_lock:
                await self.owner.commit_pending()
        finally:
            self.owner.revoking.clear()

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
        dlq_producer: ProducerHandle,
        retry: RetryPolicy | None = None,
        group_id: str = "",
        max_records_per_poll: int = 100,
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
        self.max_records_per_poll = max_records_per_poll
        self.processing_lock = asyncio.Lock()
        self.revoking = asyncio.Event()
        self._pending_offsets: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._run_finished = asyncio.Event()
        self._run_started = False
        # handled / duplicate / ignored / dead_lettered / abandoned, for this process's lifetime
        self.outcomes: Counter[str] = Counter()

    @property
    def finished(self) -> bool:
        """True once `run` has returned or raised: a consumer is never run twice."""
        return self._run_finished.is_set()

    async def start(self) -> None:
        """Joins the group and subscribes."""
        self.consumer.subscribe(self.topics, listener=_CommitBeforeRevoke(self))
        await self.consumer.start()

    async def run(self) -> None:
        """Consumes until stopped; never lets one bad message stop the loop."""
        self._run_started = True
        try:
            while not self._stopping.is_set():
                try:
                    batches = await self.consumer.getmany(
                        timeout_ms=500, max_records=self.max_records_per_poll
                    )
                except ConsumerStoppedError:
                    return
                except KafkaError:
                    logger.exception("fetch failed", extra={"consumer": self.name})
                    await self._pause(1.0)
                    continue
                if not batches or self._stopping.is_set():
                    # Fetched after stop() was asked: left uncommitted, read again later.
                    continue
                async with self.processing_lock:
                    await self._process_batches(batches)
                    await self.commit_pending()
        finally:
            self._run_finished.set()

    def _interrupted(self) -> bool:
        return self._stopping.is_set() or self.revoking.is_set()

    async def _pause(self, delay: float) -> None:
        """Sleeps, but wakes at once when the consumer stops or loses partitions."""
        stop = asyncio.ensure_future(self._stopping.wait())
        revoke = asyncio.ensure_future(self.revoking.wait())
        try:
            await asyncio.wait({stop, revoke}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            revoke.cancel()

    async def _process_batches(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        for tp, records in batches.items():
            for record in records:
                if self._interrupted() or tp not in self.consumer.assignment():
                    return  # the rest is read again by whoever owns the partition next
                try:
                    await self.process(record)
                except _AbandonRecordError:
                    self.outcomes["abandoned"] += 1
                    return
                except Exception:
                    # A bug outside the handler (the handler's own errors are retried and
                    # dead-lettered in process()). Re-read this record later, keep the loop.
                    logger.exception("unexpected consumer error", extra={"consumer": self.name})
                    self.consumer.seek(tp, record.offset)
                    await self._pause(1.0)
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

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Finishes the record in hand, commits what is applied, and leaves the group."""
        self._stopping.set()
        if self._run_started:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._run_finished.wait(), timeout_s)
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
        declared_type = event_type_from_headers(record.headers)
        if declared_type is not None and declared_type not in self.handlers:
            # Readers ignore event types they do not handle, without parsing the body: a
            # newer producer's event must never reach the DLQ of an older consumer.
            self._ignore(declared_type)
            return
        if is_replay_for_other_group(record.headers, self.group_id):
            # A dead letter replayed for another group; this group handled it already.
            self._ignore(declared_type or "replay")
            return
        try:
            raw = parse_envelope(record.value)
        except UndecodableEventError as exc:
            await self.dead_letter(record, exc, attempts=0)
            return
        handler = self.handlers.get(raw.event_type)
        if handler is None:
            self._ignore(raw.event_type)
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

    def _ignore(self, event_type: str) -> None:
        metrics.EVENTS_HANDLED.labels(self.name, event_type, "ignored").inc()
        self.outcomes["ignored"] += 1

    async def _apply_with_retries(
        self, record: ConsumerRecord[bytes, bytes], event: EventEnvelope[Any], handler: Handler
    ) -> None:
        attempt = 0
        outage_delay = self.retry.backoff_s or 0.1
        while attempt < self.retry.max_attempts:
            try:
                outcome = await self._apply_once(event, handler)
            except Exception as exc:
                if self._interrupted():
                    raise _AbandonRecordError from exc
                if is_infrastructure_error(exc):
                    logger.warning(
                        "infrastructure unavailable, retrying without counting: %r",
                        exc,
                        extra={"consumer": self.name, "event_type": event.event_type},
                    )
                    await self._pause(outage_delay)
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
                await self._pause(self.retry.delay(attempt))
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
            generation = self.dlq_producer.generation
            try:
                producer = self.dlq_producer.current()
                await asyncio.wait_for(
                    producer.send_and_wait(
                        target, value=record.value, key=record.key, headers=headers
                    ),
                    DLQ_SEND_TIMEOUT_S,
                )
                break
            except (KafkaError, ProducerUnavailableError, TimeoutError) as exc:
                # Never drop it: without the DLQ write the offset must not move on. The
                # producer may be wedged for good (see shared.messaging.producer): replace it.
                logger.warning(
                    "dead-letter publish failed (%r); retrying", exc, extra={"topic": target}
                )
                with contextlib.suppress(Exception):
                    await self.dlq_producer.reset(seen_generation=generation)
                if self._interrupted():
                    raise _AbandonRecordError from exc
                await self._pause(delay)
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
