"""The timer worker: fires due timers exactly once, with any number of replicas."""

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter as MetricCounter
from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import Clock, SystemClock
from shared.db.errors import is_transient_database_error
from shared.observability import log_context
from shared.timers.table import FAILED, FIRED, PENDING, Timer

logger = logging.getLogger(__name__)

TimerHandler = Callable[[AsyncSession, Timer], Awaitable[None]]

TIMERS_HANDLED = MetricCounter(
    "timers_handled_total", "Due timers taken by a worker", ["schema", "kind", "outcome"]
)


class UnknownTimerKindError(LookupError):
    """No handler is registered for a timer's kind in this process."""


def is_database_outage(exc: BaseException) -> bool:
    """True when the database is unavailable (by SQLSTATE), so the timer is not to blame."""
    return is_transient_database_error(exc)


@dataclass(frozen=True)
class TimerRetryPolicy:
    """How a timer whose handler raises is retried before it is marked failed."""

    max_attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 300.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff after the given (1-based) failed attempt."""
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


class TimerWorker:
    """Claims due timers with `FOR UPDATE SKIP LOCKED` and fires each in its own transaction.

    The claim, the handler's effects (state changes, outbox events) and the status change
    to `fired` commit together or not at all, so a timer fires exactly once: a crash
    before the commit leaves it pending and unlocked for the next worker, and a replica
    never sees a timer another one holds.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        table: Table,
        handlers: Mapping[str, TimerHandler],
        clock: Clock | None = None,
        batch_size: int = 100,
        poll_interval_s: float = 1.0,
        retry: TimerRetryPolicy | None = None,
        max_outage_backoff_s: float = 30.0,
        name: str = "timers",
        concurrency: int = 1,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.table = table
        self.handlers = dict(handlers)
        self.clock = clock or SystemClock()
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.retry = retry or TimerRetryPolicy()
        self.max_outage_backoff_s = max_outage_backoff_s
        self.name = name
        # Timers fired at once, each in its own transaction: handlers that wait on a network
        # (notification's sends) overlap instead of queueing behind one another.
        self.concurrency = max(1, concurrency)
        self.schema = table.schema or "public"
        # fired / retrying / failed, for this process's lifetime
        self.outcomes: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._stopping = False

    async def run(self) -> None:
        """Fires due timers until stopped; database outages are waited out with backoff."""
        outages = 0
        while not self._stopping:
            try:
                taken = await self.fire_due_once()
                outages = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The failed transaction rolled back: no attempt was counted, the timer is
                # still pending and will be claimed again once the database answers.
                outages += 1
                delay = min(self.max_outage_backoff_s, 0.2 * 2 ** min(outages, 10))
                logger.warning(
                    "timer worker %s: %r; retrying in %.1fs",
                    self.name,
                    exc,
                    delay,
                    exc_info=not is_database_outage(exc),
                )
                await self._sleep(delay)
                continue
            if taken < self.batch_size:
                await self._sleep(self.poll_interval_s)

    def stop(self) -> None:
        """Lets `run` return after the timer in hand."""
        self._stopping = True
        self._wake.set()

    def wake(self) -> None:
        """Asks `run` to look for due timers now instead of at the next poll."""
        self._wake.set()

    async def fire_due_once(self) -> int:
        """Takes up to `batch_size` due timers, one transaction each; returns how many it took.

        A taken timer either fired, or failed and was rescheduled with backoff (or marked
        failed after its last attempt). A database outage propagates to the caller.
        """
        taken = 0

        async def lane() -> None:
            nonlocal taken
            while taken < self.batch_size and not self._stopping:
                taken += 1  # reserved before the claim, so lanes never overrun the batch
                if await self._fire_next(self.clock.now()) is None:
                    taken -= 1
                    return

        if self.concurrency == 1:
            await lane()
            return taken
        try:
            # SKIP LOCKED keeps the lanes off each other's timers; one lane's outage cancels
            # the others (their transactions roll back, their timers stay pending).
            async with asyncio.TaskGroup() as lanes:
                for _ in range(self.concurrency):
                    lanes.create_task(lane())
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return taken

    async def _fire_next(self, now: datetime) -> str | None:
        table = self.table
        timer: Timer | None = None
        try:
            async with self.sessionmaker() as session, session.begin():
                # One row per transaction: a slow handler holds one lock, a crash undoes one
                # firing, and each effect is visible as soon as its own timer commits.
                row = (
                    await session.execute(
                        select(table)
                        .where(table.c.status == PENDING, table.c.due_at <= now)
                        .order_by(table.c.due_at)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).first()
                if row is None:
                    return None
                timer = Timer.from_row(row)
                with self._log_context(timer):
                    await self._call_handler(session, timer)
                    await session.execute(
                        update(table)
                        .where(table.c.id == timer.id)
                        .values(status=FIRED, fired_at=now, attempts=timer.attempts + 1)
                    )
            outcome = FIRED
        except Exception as exc:
            if timer is None or is_database_outage(exc):
                raise
            # The handler's writes rolled back with the claim (no savepoint: two round trips
            # fewer on every firing); the failure is recorded in a transaction of its own.
            with self._log_context(timer):
                recorded = await self._record_failure_alone(timer, exc, now)
            if recorded is None:
                return "taken"
            outcome = recorded
        self.outcomes[outcome] += 1
        TIMERS_HANDLED.labels(self.schema, timer.kind, outcome).inc()
        return outcome

    @staticmethod
    def _log_context(timer: Timer) -> contextlib.AbstractContextManager[None]:
        return log_context(
            complaint_id=timer.payload.get("complaint_id"),
            correlation_id=timer.payload.get("correlation_id"),
        )

    async def _record_failure_alone(
        self, timer: Timer, exc: Exception, now: datetime
    ) -> str | None:
        """Counts a failed firing; None if another worker took the timer in between."""
        table = self.table
        async with self.sessionmaker() as session, session.begin():
            # Still pending and as this worker saw it: otherwise another replica claimed it
            # after the rollback and that firing counts instead.
            still = (
                await session.execute(
                    select(table.c.id)
                    .where(
                        table.c.id == timer.id,
                        table.c.status == PENDING,
                        table.c.attempts == timer.attempts,
                    )
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if still is None:
                return None
            return await self._record_failure(session, timer, exc, now)

    async def _call_handler(self, session: AsyncSession, timer: Timer) -> None:
        handler = self.handlers.get(timer.kind)
        if handler is None:
            # Retried like a failure rather than failed at once: during a rolling deploy a
            # newer replica that knows this kind may take it on the next attempt.
            raise UnknownTimerKindError(f"no handler for timer kind {timer.kind!r}")
        await handler(session, timer)

    async def _record_failure(
        self, session: AsyncSession, timer: Timer, exc: Exception, now: datetime
    ) -> str:
        attempts = timer.attempts + 1
        error = f"{type(exc).__name__}: {exc}"[:2000]
        values: dict[str, object] = {"attempts": attempts, "last_error": error}
        if attempts >= self.retry.max_attempts:
            values["status"] = FAILED
            outcome = FAILED
            logger.error(
                "timer %s (%s) failed for good after %d attempts: %s",
                timer.key,
                timer.kind,
                attempts,
                error,
            )
        else:
            delay = self.retry.delay(attempts)
            values["due_at"] = now + timedelta(seconds=delay)
            outcome = "retrying"
            logger.warning(
                "timer %s (%s) failed (attempt %d/%d), retrying in %.1fs: %s",
                timer.key,
                timer.kind,
                attempts,
                self.retry.max_attempts,
                delay,
                error,
            )
        await session.execute(
            update(self.table).where(self.table.c.id == timer.id).values(**values)
        )
        return outcome

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
