"""The generic consumer loop: inbox dedupe, commit after effects, retries, dead letters."""

import asyncio
import contextlib
import logging
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, IllegalStateError, KafkaError
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.errors import is_transient_database_error
from shared.events.envelope import EventEnvelope
from shared.events.registry import (
    UndecodableEventError,
    decode_declared,
    decode_payload,
    parse_envelope,
)
from shared.events.topics import dlq_topic
from shared.messaging import metrics
from shared.messaging.headers import (
    event_type_from_headers,
    header_value,
    is_replay_for_other_group,
)
from shared.messaging.inbox import claim_event, claim_events
from shared.messaging.producer import ProducerHandle, ProducerUnavailableError
from shared.observability import log_context
from shared.time import utcnow

logger = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, EventEnvelope[Any]], Awaitable[None]]

DLQ_SEND_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class _Decision:
    """A record, decoded as far as needed to know what to do with it."""

    record: ConsumerRecord[bytes, bytes]
    event: EventEnvelope[Any] | None = None
    handler: Handler | None = None
    # For log lines about the record, once the envelope was read.
    complaint_id: object | None = None
    correlation_id: str | None = None
    ignored_type: str | None = None
    error: UndecodableEventError | None = None

    @property
    def event_type(self) -> str:
        """The event type, for metrics and logs."""
        return self.event.event_type if self.event is not None else (self.ignored_type or "?")


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
        batch_transactions: bool = True,
        commit_interval_s: float = 0.0,
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
        self.batch_transactions = batch_transactions
        # Offsets of applied records are committed at most this often (always on revoke and
        # stop): a crash redelivers at most that much, which the inbox turns into no-ops.
        self.commit_interval_s = commit_interval_s
        self._last_commit_at = 0.0
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
        loop = asyncio.get_running_loop()
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
                if self._stopping.is_set():
                    # Fetched after stop() was asked: left uncommitted, read again later.
                    continue
                if not batches:
                    if self._pending_offsets:  # quiet now: commit what the interval held back
                        async with self.processing_lock:
                            await self.commit_pending()
                    continue
                async with self.processing_lock:
                    await self._process_batches(batches)
                    if loop.time() - self._last_commit_at >= self.commit_interval_s:
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
        if self.batch_transactions and await self._apply_batch(batches):
            for tp, records in batches.items():
                self._pending_offsets[tp] = records[-1].offset + 1
                self._record_lag(tp)
            return
        # One at a time: each record in its own transaction, with retries and dead letters.
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
        self._last_commit_at = asyncio.get_running_loop().time()
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # The group moved on without us; the next owner re-reads these records and
            # the inbox turns them into no-ops. Duplicate delivery, never a lost effect.
            logger.warning("offset commit failed: %s", exc, extra={"consumer": self.name})

    async def _apply_batch(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> bool:
        """Applies a whole poll in one transaction; False (nothing applied) on any trouble.

        One commit per batch instead of one per event is most of a consumer's throughput.
        The inbox still gets a row per event. Anything unusual (a record to dead-letter, a
        failing handler, an outage, a partition moving) rolls the batch back, and the caller
        applies the records one at a time with per-event retries and dead letters.
        """
        decisions: list[_Decision] = []
        for tp, records in batches.items():
            if tp not in self.consumer.assignment():
                return False
            for record in records:
                decision = self._decide(record)
                if decision.error is not None:
                    return False
                decisions.append(decision)
        if self._interrupted():
            return False
        outcomes: list[tuple[_Decision, str]] = []
        try:
            async with self.sessionmaker() as session, session.begin():
                applied = [
                    (decision, decision.event, decision.handler)
                    for decision in decisions
                    if decision.event is not None and decision.handler is not None
                ]
                # The whole batch is claimed in one statement; each event's effects follow in
                # the same transaction, so a rollback undoes claims and effects together.
                fresh = await claim_events(
                    session,
                    self.inbox,
                    consumer=self.name,
                    events=[(event.event_id, event.event_type) for _, event, _ in applied],
                )
                for decision, event, handler in applied:
                    if self._interrupted():
                        # Partitions are moving or the consumer stops: give the whole batch
                        # up now rather than hold the rebalance until it is done.
                        raise _AbandonRecordError("batch interrupted")
                    if event.event_id not in fresh:
                        outcomes.append((decision, "duplicate"))
                        continue
                    fresh.discard(event.event_id)  # the same event again later in the batch
                    with self._event_log_context(decision):
                        await handler(session, event)
                    outcomes.append((decision, "handled"))
        except Exception as exc:
            logger.info(
                "batch of %d not applied (%r); applying one at a time",
                len(decisions),
                exc,
                extra={"consumer": self.name},
            )
            return False
        for decision in decisions:
            if decision.event is None:
                self._ignore(decision.ignored_type or "unknown")
        for decision, outcome in outcomes:
            with self._event_log_context(decision):
                self._count_outcome(decision.event_type, outcome)
        return True

    def _decide(self, record: ConsumerRecord[bytes, bytes]) -> "_Decision":
        """What to do with a record: ignore it, apply it, or dead-letter it (with why)."""
        declared_type = event_type_from_headers(record.headers)
        if declared_type is not None and declared_type not in self.handlers:
            # Readers ignore event types they do not handle, without parsing the body: a
            # newer producer's event must never reach the DLQ of an older consumer.
            return _Decision(record, ignored_type=declared_type)
        if is_replay_for_other_group(record.headers, self.group_id):
            # A dead letter replayed for another group; this group handled it already.
            return _Decision(record, ignored_type=declared_type or "replay")
        if declared_type is not None:
            declared = self._decode_declared(record, declared_type)
            if declared is not None:
                return _Decision(
                    record,
                    event=declared,
                    handler=self.handlers[declared_type],
                    complaint_id=declared.complaint_id,
                    correlation_id=declared.correlation_id,
                )
        try:
            raw = parse_envelope(record.value)
        except UndecodableEventError as exc:
            return _Decision(record, error=exc)
        handler = self.handlers.get(raw.event_type)
        if handler is None:
            return _Decision(record, ignored_type=raw.event_type)
        complaint_id, correlation_id = raw.complaint_id, raw.correlation_id
        try:
            event = decode_payload(raw)
        except UndecodableEventError as exc:
            return _Decision(
                record, error=exc, complaint_id=complaint_id, correlation_id=correlation_id
            )
        return _Decision(
            record,
            event=event,
            handler=handler,
            complaint_id=complaint_id,
            correlation_id=correlation_id,
        )

    @staticmethod
    def _decode_declared(
        record: ConsumerRecord[bytes, bytes], declared_type: str
    ) -> EventEnvelope[Any] | None:
        # The common case, parsed once: headers name the type and version of the body.
        version = header_value(record.headers, "schema_version")
        if version is None or not version.isdigit():
            return None
        return decode_declared(record.value, declared_type, int(version))

    def _event_log_context(self, decision: "_Decision") -> AbstractContextManager[None]:
        if decision.complaint_id is None:
            return contextlib.nullcontext()
        return log_context(
            complaint_id=decision.complaint_id,
            correlation_id=decision.correlation_id,
            traceparent=header_value(decision.record.headers, "traceparent"),
        )

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Handles one record: decode, dedupe, apply with retries, or dead-letter it."""
        decision = self._decide(record)
        with self._event_log_context(decision):
            if decision.error is not None:
                await self.dead_letter(record, decision.error, attempts=0)
            elif decision.event is None or decision.handler is None:
                self._ignore(decision.ignored_type or "unknown")
            else:
                await self._apply_with_retries(record, decision.event, decision.handler)

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
                self._count_outcome(event.event_type, outcome)
                return

    def _count_outcome(self, event_type: str, outcome: str) -> None:
        metrics.EVENTS_HANDLED.labels(self.name, event_type, outcome).inc()
        self.outcomes[outcome] += 1
        logger.info("event %s", outcome, extra={"consumer": self.name, "event_type": event_type})

    async def _apply_once(self, event: EventEnvelope[Any], handler: Handler) -> str:
        async with self.sessionmaker() as session, session.begin():
            return await self._claim_and_handle(session, event, handler)

    async def _claim_and_handle(
        self, session: AsyncSession, event: EventEnvelope[Any], handler: Handler
    ) -> str:
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
