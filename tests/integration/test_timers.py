"""Durable timers on the real Postgres: scheduling, firing exactly once, retries, crashes."""

import asyncio
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog import CATALOG
from shared.clock import ManualClock
from shared.db import create_engine, create_sessionmaker
from shared.runtime import ServiceRuntime, ServiceSpec
from shared.settings import ServiceSettings
from shared.time import utcnow
from shared.timers import (
    CANCELLED,
    FAILED,
    FIRED,
    PENDING,
    Timer,
    TimerHandler,
    TimerRetryPolicy,
    TimerWorker,
    cancel,
    is_database_outage,
    purge_finished_timers,
    schedule,
    schedule_again,
)
from tests.support.messaging import probe_event
from tests.support.stack import REPO_ROOT, StackUnderTest
from tests.support.timers import PROBE_KIND, TimersSchema, timers_schema
from tests.support.waiting import wait_until

pytestmark = pytest.mark.stack

HOUR = timedelta(hours=1)


@pytest.fixture
async def db(stack: StackUnderTest) -> AsyncIterator[TimersSchema]:
    async with timers_schema(stack.admin_sqlalchemy_url()) as schema:
        yield schema


class EffectHandler:
    """Writes one effect row per firing; fails on demand; remembers what it saw."""

    def __init__(self, db: TimersSchema, *, worker: str = "w", fail: bool = False) -> None:
        self.db = db
        self.worker = worker
        self.fail = fail
        self.seen: list[Timer] = []

    async def __call__(self, session: AsyncSession, timer: Timer) -> None:
        self.seen.append(timer)
        await session.execute(
            insert(self.db.effects).values(
                timer_id=timer.id, worker=self.worker, note=str(timer.payload)
            )
        )
        if self.fail:
            raise RuntimeError("the merchant API said no")


def worker_on(
    db: TimersSchema,
    handlers: dict[str, TimerHandler],
    clock: ManualClock | None = None,
    **options: Any,
) -> TimerWorker:
    return TimerWorker(
        sessionmaker=db.sessionmaker, table=db.timers, handlers=handlers, clock=clock, **options
    )


async def schedule_now(
    db: TimersSchema, key: str, due_in: timedelta, clock: ManualClock
) -> uuid.UUID:
    async with db.sessionmaker() as session, session.begin():
        return await schedule(
            session,
            db.timers,
            kind=PROBE_KIND,
            key=key,
            due_at=clock.now() + due_in,
            payload={"key": key},
        )


async def timer_row(db: TimersSchema, timer_id: uuid.UUID) -> Any:
    async with db.sessionmaker() as session:
        return (await session.execute(select(db.timers).where(db.timers.c.id == timer_id))).one()


class TestScheduling:
    async def test_a_timer_scheduled_in_a_rolled_back_transaction_never_exists(self, db):
        clock = ManualClock()

        async def failing_state_change() -> None:
            async with db.sessionmaker() as session, session.begin():
                await schedule(session, db.timers, kind=PROBE_KIND, key="k", due_at=clock.now())
                raise RuntimeError("the state change failed")

        with pytest.raises(RuntimeError):
            await failing_state_change()
        handler = EffectHandler(db)
        assert await worker_on(db, {PROBE_KIND: handler}, clock).fire_due_once() == 0
        assert await db.count(db.timers) == 0

    async def test_moving_the_clock_makes_a_timer_due_without_sleeping(self, db):
        clock = ManualClock()
        timer_id = await schedule_now(db, "sla", HOUR, clock)
        handler = EffectHandler(db)
        worker = worker_on(db, {PROBE_KIND: handler}, clock)
        assert await worker.fire_due_once() == 0
        clock.advance(HOUR - timedelta(microseconds=1))
        assert await worker.fire_due_once() == 0
        clock.advance(timedelta(microseconds=1))
        assert await worker.fire_due_once() == 1
        row = await timer_row(db, timer_id)
        assert (row.status, row.attempts, row.fired_at) == (FIRED, 1, clock.now())
        assert [timer.id for timer in handler.seen] == [timer_id]

    async def test_scheduling_the_same_key_again_reschedules_the_pending_timer(self, db):
        clock = ManualClock()
        first = await schedule_now(db, "merchant-deadline", HOUR, clock)
        async with db.sessionmaker() as session, session.begin():
            second = await schedule(
                session,
                db.timers,
                kind=PROBE_KIND,
                key="merchant-deadline",
                due_at=clock.now() + 2 * HOUR,
                payload={"extended": True},
            )
        assert second == first
        assert await db.count(db.timers) == 1
        handler = EffectHandler(db)
        worker = worker_on(db, {PROBE_KIND: handler}, clock)
        clock.advance(HOUR)
        assert await worker.fire_due_once() == 0
        clock.advance(HOUR)
        assert await worker.fire_due_once() == 1
        assert handler.seen[0].payload == {"extended": True}
        # Once fired it is history: the same key schedules a new timer beside it.
        again = await schedule_now(db, "merchant-deadline", HOUR, clock)
        assert again != first
        assert await db.statuses() == {FIRED: 1, PENDING: 1}

    async def test_a_handler_schedules_its_own_key_again_as_a_new_timer(self, db):
        clock = ManualClock()
        first = await schedule_now(db, "progress-update", HOUR, clock)
        fired: list[Timer] = []

        async def every_hour(session: AsyncSession, timer: Timer) -> None:
            fired.append(timer)
            await schedule_again(session, db.timers, timer, due_at=clock.now() + HOUR)

        worker = worker_on(db, {PROBE_KIND: every_hour}, clock)
        for _ in range(3):
            clock.advance(HOUR)
            assert await worker.fire_due_once() == 1
        assert fired[0].id == first
        assert len({timer.id for timer in fired}) == 3
        assert await db.statuses() == {FIRED: 3, PENDING: 1}

    async def test_a_failed_handler_leaves_no_next_timer_behind(self, db):
        clock = ManualClock()
        first = await schedule_now(db, "progress-update", HOUR, clock)

        async def reschedule_then_fail(session: AsyncSession, timer: Timer) -> None:
            await schedule_again(session, db.timers, timer, due_at=clock.now() + HOUR)
            raise RuntimeError("the merchant API said no")

        clock.advance(HOUR)
        worker = worker_on(db, {PROBE_KIND: reschedule_then_fail}, clock)
        assert await worker.fire_due_once() == 1
        row = await timer_row(db, first)
        assert (row.status, row.attempts) == (PENDING, 1)
        assert await db.statuses() == {PENDING: 1}

    async def test_a_cancelled_timer_never_fires_and_cancelling_twice_reports_nothing(self, db):
        clock = ManualClock()
        timer_id = await schedule_now(db, "auto-close", HOUR, clock)
        async with db.sessionmaker() as session, session.begin():
            assert await cancel(session, db.timers, kind=PROBE_KIND, key="auto-close")
        async with db.sessionmaker() as session, session.begin():
            assert not await cancel(session, db.timers, kind=PROBE_KIND, key="auto-close")
        clock.advance(2 * HOUR)
        assert await worker_on(db, {PROBE_KIND: EffectHandler(db)}, clock).fire_due_once() == 0
        assert (await timer_row(db, timer_id)).status == CANCELLED
        assert await db.count(db.effects) == 0

    async def test_cancelling_a_timer_that_already_fired_reports_false(self, db):
        clock = ManualClock()
        await schedule_now(db, "progress", timedelta(0), clock)
        assert await worker_on(db, {PROBE_KIND: EffectHandler(db)}, clock).fire_due_once() == 1
        async with db.sessionmaker() as session, session.begin():
            assert not await cancel(session, db.timers, kind=PROBE_KIND, key="progress")

    async def test_retention_purges_old_fired_and_cancelled_timers_but_keeps_failed_ones(self, db):
        clock = ManualClock()
        for key in ("fired", "failed", "cancelled", "pending"):
            await schedule_now(db, key, timedelta(0) if key != "pending" else HOUR, clock)
        async with db.sessionmaker() as session, session.begin():
            await cancel(session, db.timers, kind=PROBE_KIND, key="cancelled")
            await session.execute(
                db.timers.update().where(db.timers.c.key == "failed").values(status=FAILED)
            )
        await worker_on(db, {PROBE_KIND: EffectHandler(db)}, clock).fire_due_once()
        async with db.sessionmaker() as session, session.begin():
            purged = await purge_finished_timers(
                session, db.timers, now=clock.now() + 8 * 24 * HOUR, keep=7 * 24 * HOUR
            )
        assert purged == 2
        assert await db.statuses() == {FAILED: 1, PENDING: 1}


class TestFiring:
    async def test_a_handler_can_emit_an_outbox_event_that_commits_with_the_firing(self, db):
        clock = ManualClock()

        async def emit(session: AsyncSession, timer: Timer) -> None:
            await db.outbox.add(session, probe_event(uuid.uuid4(), 1))

        async def emit_then_fail(session: AsyncSession, timer: Timer) -> None:
            await emit(session, timer)
            raise RuntimeError("after the event was added")

        await schedule_now(db, "ok", timedelta(0), clock)
        async with db.sessionmaker() as session, session.begin():
            await schedule(session, db.timers, kind="failing", key="bad", due_at=clock.now())
        worker = worker_on(db, {PROBE_KIND: emit, "failing": emit_then_fail}, clock)
        assert await worker.fire_due_once() == 2
        assert await db.count(db.outbox.table) == 1, "the failed handler's event was rolled back"
        assert worker.outcomes == {FIRED: 1, "retrying": 1}

    async def test_a_failing_handler_is_retried_with_backoff_then_marked_failed(self, db):
        clock = ManualClock()
        timer_id = await schedule_now(db, "notify", timedelta(0), clock)
        handler = EffectHandler(db, fail=True)
        worker = worker_on(
            db, {PROBE_KIND: handler}, clock, retry=TimerRetryPolicy(max_attempts=3, backoff_s=60)
        )
        assert await worker.fire_due_once() == 1
        row = await timer_row(db, timer_id)
        assert (row.status, row.attempts) == (PENDING, 1)
        assert "RuntimeError: the merchant API said no" in row.last_error
        assert row.due_at == clock.now() + timedelta(seconds=60)

        assert await worker.fire_due_once() == 0, "backoff is respected"
        clock.advance(timedelta(seconds=60))
        assert await worker.fire_due_once() == 1
        assert (await timer_row(db, timer_id)).due_at == clock.now() + timedelta(seconds=120)
        clock.advance(timedelta(seconds=120))
        assert await worker.fire_due_once() == 1
        row = await timer_row(db, timer_id)
        assert (row.status, row.attempts) == (FAILED, 3), "failed, visible, not lost"
        assert [timer.attempts for timer in handler.seen] == [0, 1, 2]

        clock.advance(24 * HOUR)
        assert await worker.fire_due_once() == 0
        assert await db.count(db.effects) == 0, "a failed attempt's writes roll back"

    async def test_an_unknown_kind_ends_failed_without_stopping_the_worker(self, db):
        clock = ManualClock()
        async with db.sessionmaker() as session, session.begin():
            await schedule(session, db.timers, kind="mystery", key="m", due_at=clock.now())
        await schedule_now(db, "known", timedelta(0), clock)
        worker = worker_on(
            db,
            {PROBE_KIND: EffectHandler(db)},
            clock,
            retry=TimerRetryPolicy(max_attempts=2, backoff_s=1),
        )
        assert await worker.fire_due_once() == 2
        clock.advance(timedelta(seconds=1))
        assert await worker.fire_due_once() == 1
        async with db.sessionmaker() as session:
            mystery = (
                await session.execute(select(db.timers).where(db.timers.c.kind == "mystery"))
            ).one()
        assert mystery.status == FAILED
        assert "no handler for timer kind 'mystery'" in mystery.last_error
        assert await db.count(db.effects) == 1, "the known timer fired beside it"

    async def test_a_database_outage_mid_firing_is_waited_out_without_counting_an_attempt(self, db):
        clock = ManualClock()
        timer_id = await schedule_now(db, "outage", timedelta(0), clock)
        effects = EffectHandler(db)
        outages: list[BaseException] = []

        async def connection_dies_once(session: AsyncSession, timer: Timer) -> None:
            if not outages:
                try:
                    # The server ends this very connection, as a failover or restart would.
                    await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
                except Exception as exc:
                    outages.append(exc)
                    raise
            await effects(session, timer)

        worker = worker_on(db, {PROBE_KIND: connection_dies_once}, clock, poll_interval_s=0.05)
        task = asyncio.create_task(worker.run())
        try:
            await wait_until(
                lambda: db.count(db.timers, status=FIRED), timeout_s=15, what="fired after outage"
            )
        finally:
            worker.stop()
            await asyncio.wait_for(task, 10)
        assert outages
        assert is_database_outage(outages[0])
        row = await timer_row(db, timer_id)
        assert (row.status, row.attempts, row.last_error) == (FIRED, 1, None)
        assert await db.count(db.effects) == 1

    async def test_a_lock_timeout_in_the_handler_is_waited_out_without_counting_an_attempt(
        self, db, stack
    ):
        # Another transaction holds the effects table; the handler's insert gives up after
        # its lock timeout with SQLSTATE 55P03: the database is busy, the timer is not wrong.
        clock = ManualClock()
        timer_id = await schedule_now(db, "locked", timedelta(0), clock)
        effects = EffectHandler(db)

        async def impatient(session: AsyncSession, timer: Timer) -> None:
            await session.execute(text("SET LOCAL lock_timeout = '100ms'"))
            await effects(session, timer)

        worker = worker_on(db, {PROBE_KIND: impatient}, clock)
        holder = await asyncpg.connect(stack.admin_dsn())
        try:
            locking = holder.transaction()
            await locking.start()
            await holder.execute(f'LOCK TABLE "{db.schema}".effects IN ACCESS EXCLUSIVE MODE')
            with pytest.raises(DBAPIError, match="lock timeout") as raised:
                await worker.fire_due_once()
            assert is_database_outage(raised.value), repr(raised.value)
            row = await timer_row(db, timer_id)
            assert (row.status, row.attempts, row.last_error) == (PENDING, 0, None)
            await locking.rollback()
        finally:
            await holder.close()
        assert await worker.fire_due_once() == 1
        row = await timer_row(db, timer_id)
        assert (row.status, row.attempts) == (FIRED, 1)


async def run_until_all_fired(db: TimersSchema, workers: list[TimerWorker], total: int) -> None:
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        await wait_until(
            lambda: _count_is(db, total), timeout_s=30, interval_s=0.05, what="all fired"
        )
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)


async def _count_is(db: TimersSchema, total: int) -> bool:
    return await db.count(db.timers, status=FIRED) == total


async def schedule_many(db: TimersSchema, count: int) -> None:
    due = utcnow() - timedelta(seconds=1)
    async with db.sessionmaker() as session, session.begin():
        for n in range(count):
            await schedule(session, db.timers, kind=PROBE_KIND, key=f"t-{n}", due_at=due)


async def assert_each_fired_exactly_once(db: TimersSchema, total: int) -> None:
    per_timer = await db.effects_per_timer()
    assert len(per_timer) == total
    assert set(per_timer.values()) == {1}, "no timer has two effects"
    assert await db.statuses() == {FIRED: total}
    assert await db.count(db.timers, attempts=1) == total


class TestReplicas:
    async def test_one_worker_fires_timers_side_by_side_and_each_exactly_once(self, db):
        await schedule_many(db, 24)
        in_flight = 0
        most = 0
        effects = EffectHandler(db)

        async def slow(session: AsyncSession, timer: Timer) -> None:
            # A handler waiting on a network, as a send does.
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.05)
            await effects(session, timer)
            in_flight -= 1

        worker = worker_on(db, {PROBE_KIND: slow}, poll_interval_s=0.05, concurrency=4)
        await run_until_all_fired(db, [worker], 24)
        await assert_each_fired_exactly_once(db, 24)
        assert 2 <= most <= 4, "firings overlap, never more than the concurrency"
        assert worker.outcomes[FIRED] == 24

    async def test_two_workers_on_separate_engines_fire_each_of_200_timers_exactly_once(
        self, db, stack: StackUnderTest
    ):
        await schedule_many(db, 200)
        second_engine = create_engine(stack.admin_sqlalchemy_url(), pool_size=2)
        try:
            workers = []
            for name, sessionmaker in (
                ("a", db.sessionmaker),
                ("b", create_sessionmaker(second_engine)),
            ):
                workers.append(
                    TimerWorker(
                        sessionmaker=sessionmaker,
                        table=db.timers,
                        handlers={PROBE_KIND: EffectHandler(db, worker=name)},
                        batch_size=20,
                        poll_interval_s=0.05,
                        name=name,
                    )
                )
            await run_until_all_fired(db, workers, 200)
        finally:
            await second_engine.dispose()
        await assert_each_fired_exactly_once(db, 200)
        assert all(worker.outcomes[FIRED] > 0 for worker in workers), "both took part"
        assert sum(worker.outcomes[FIRED] for worker in workers) == 200

    async def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
        self, db, stack: StackUnderTest
    ):
        total = 60
        await schedule_many(db, total)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.timer_worker_process",
            stack.admin_sqlalchemy_url(),
            db.schema,
            "0.05",
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.DEVNULL,
        )
        try:
            await wait_until(
                lambda: _fired_at_least(db, 8), timeout_s=30, what="the worker firing timers"
            )
        finally:
            process.kill()  # SIGKILL: no cleanup, no graceful rollback
            await asyncio.wait_for(process.wait(), 10)
        assert process.returncode == -signal.SIGKILL
        fired_by_victim = await db.count(db.timers, status=FIRED)
        assert fired_by_victim < total, "timers were still due when it died"
        # Every committed firing has its one effect; the firing in hand rolled back whole.
        assert await db.count(db.effects) == fired_by_victim

        survivor = worker_on(
            db, {PROBE_KIND: EffectHandler(db, worker="survivor")}, poll_interval_s=0.05
        )
        await run_until_all_fired(db, [survivor], total)
        await assert_each_fired_exactly_once(db, total)
        assert survivor.outcomes[FIRED] == total - fired_by_victim


async def _fired_at_least(db: TimersSchema, n: int) -> bool:
    return await db.count(db.timers, status=FIRED) >= n


class TestRuntime:
    async def test_a_service_whose_spec_has_timers_runs_a_worker_that_fires_them(
        self, db, stack: StackUnderTest
    ):
        handler = EffectHandler(db)
        spec = ServiceSpec(
            name="timer-probe",
            schema=db.schema,
            outbox=db.outbox,
            timers=db.timers,
            timer_handlers={PROBE_KIND: handler},
        )
        settings = ServiceSettings(
            database_url=stack.admin_sqlalchemy_url(),
            kafka_bootstrap_servers=stack.config.kafka_bootstrap,
            timer_poll_interval_seconds=0.05,
        )
        runtime = ServiceRuntime(spec, settings)
        await runtime.start()
        try:
            await schedule_many(db, 3)
            await wait_until(lambda: _count_is(db, 3), timeout_s=15, what="fired by the runtime")
        finally:
            await runtime.stop()
        assert await db.count(db.effects) == 3


class TestSchema:
    async def test_the_migration_builds_exactly_the_table_the_model_defines(self, db):
        def differences(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_schemas": True,
                    "include_name": lambda name, type_, parent: (
                        type_ != "schema" or name == db.schema
                    ),
                    "compare_server_default": True,
                },
            )
            return list(compare_metadata(context, db.metadata))

        async with db.engine.connect() as conn:
            assert await conn.run_sync(differences) == []

    async def test_every_service_schema_has_its_timers_table_and_indexes(self, admin_db):
        rows = await admin_db.fetch(
            "SELECT schemaname, indexname FROM pg_indexes WHERE tablename = 'timers'"
        )
        found = {(row["schemaname"], row["indexname"]) for row in rows}
        for entry in CATALOG:
            for index in ("pk_timers", "ix_timers_pending_due_at", "uq_timers_pending_kind_key"):
                assert (entry.schema, index) in found, (entry.schema, index)

    async def test_only_one_pending_timer_per_kind_and_key_can_exist(
        self, admin_db: asyncpg.Connection, db
    ):
        insert_pending = (
            f'INSERT INTO "{db.schema}".timers (id, kind, key, due_at) '
            "VALUES ($1, 'k', 'same', now())"
        )
        await admin_db.execute(insert_pending, uuid.uuid4())
        with pytest.raises(asyncpg.UniqueViolationError):
            await admin_db.execute(insert_pending, uuid.uuid4())
        with pytest.raises(asyncpg.CheckViolationError):
            await admin_db.execute(f"UPDATE \"{db.schema}\".timers SET status = 'snoozed'")
