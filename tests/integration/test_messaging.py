"""Outbox, relay, inbox and dead letters against the real Postgres and Kafka."""

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import EventEnvelope, Topic, dlq_topic
from shared.messaging import (
    EventConsumer,
    OutboxRelay,
    RetryPolicy,
    claim_event,
    claim_events,
    create_consumer,
    create_producer,
    ensure_topics,
    replay_dead_letters,
)
from shared.messaging import metrics as messaging_metrics
from shared.messaging.headers import REPLAY_FOR_GROUP_HEADER, event_headers
from shared.messaging.kafka import delete_topics
from shared.messaging.outbox import RelaySendError
from shared.messaging.producer import ProducerHandle
from tests.support.kafka import read_all
from tests.support.messaging import MessagingSchema, messaging_schema, probe_event, record_effect
from tests.support.stack import StackUnderTest
from tests.support.waiting import wait_until

pytestmark = pytest.mark.stack

TOPIC = Topic.INTAKE_COMPLAINT.value


@dataclass
class Lane:
    """One test's own topics (through a prefix) and throwaway schema."""

    bootstrap: str
    prefix: str
    db: MessagingSchema

    @property
    def topic(self) -> str:
        return f"{self.prefix}{TOPIC}"

    @property
    def dlq(self) -> str:
        return dlq_topic(self.topic)


@pytest.fixture
async def lane(stack: StackUnderTest) -> AsyncIterator[Lane]:
    prefix = f"msg-{uuid.uuid4().hex[:8]}."
    bootstrap = stack.config.kafka_bootstrap
    topics = [f"{prefix}{TOPIC}", dlq_topic(f"{prefix}{TOPIC}")]
    await ensure_topics(bootstrap, topics, partitions=3)
    async with messaging_schema(stack.admin_sqlalchemy_url()) as db:
        yield Lane(bootstrap=bootstrap, prefix=prefix, db=db)
    await delete_topics(bootstrap, topics)


@pytest.fixture
async def producer(stack: StackUnderTest) -> AsyncIterator[ProducerHandle]:
    handle = ProducerHandle(lambda: create_producer(stack.config.kafka_bootstrap, client_id="t"))
    await handle.start()
    yield handle
    await handle.stop()


class CountingHandler:
    """Records an effect per event; can be told to fail for chosen sequences."""

    def __init__(self, lane: Lane, *, fail_sequences: set[int] | None = None, delay_s: float = 0):
        self.lane = lane
        self.calls = 0
        self.fail_sequences = fail_sequences or set()
        self.delay_s = delay_s

    async def __call__(self, session: AsyncSession, event: EventEnvelope[Any]) -> None:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if event.payload.sequence in self.fail_sequences:
            raise RuntimeError(f"handler refuses sequence {event.payload.sequence}")
        await record_effect(session, self.lane.db.effects, event)


def make_consumer(
    lane: Lane,
    producer: ProducerHandle,
    handler: CountingHandler,
    *,
    group: str,
    retry: RetryPolicy | None = None,
    session_timeout_ms: int = 6000,
    rebalance_timeout_ms: int = 60_000,
) -> EventConsumer:
    return EventConsumer(
        name=group,
        group_id=group,
        consumer=create_consumer(
            lane.bootstrap,
            group_id=group,
            client_id=group,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
        ),
        topics=[lane.topic],
        handlers={"probe.recorded": handler},
        sessionmaker=lane.db.sessionmaker,
        inbox=lane.db.inbox,
        dlq_producer=producer,
        retry=retry or RetryPolicy(max_attempts=3, backoff_s=0.01, max_backoff_s=0.05),
    )


async def running(consumer: EventConsumer) -> asyncio.Task[None]:
    await consumer.start()
    return asyncio.create_task(consumer.run())


async def stop(consumer: EventConsumer, task: asyncio.Task[None]) -> None:
    await consumer.stop()
    await asyncio.wait_for(task, 10)


async def consume_until_applied(
    lane: Lane,
    producer: ProducerHandle,
    handler: CountingHandler,
    event_id: uuid.UUID,
    *,
    timeout_s: float = 20,
) -> EventConsumer:
    """Runs a fresh consumer group until the event's effect is stored, then stops it."""
    consumer = make_consumer(lane, producer, handler, group=f"g-{uuid.uuid4().hex[:6]}")
    task = await running(consumer)
    try:
        await wait_until(
            lambda: lane.db.count(lane.db.effects, event_id=event_id),
            timeout_s=timeout_s,
            what=f"effect of {event_id}",
        )
    finally:
        await stop(consumer, task)
    return consumer


def relay_for(
    lane: Lane, producer: Any, relay_class: type[OutboxRelay] = OutboxRelay, **options: Any
) -> OutboxRelay:
    """A relay on the lane's outbox, publishing to the lane's topics."""
    return relay_class(
        sessionmaker=lane.db.sessionmaker,
        table=lane.db.outbox.table,
        producer=producer,
        topic_prefix=lane.prefix,
        **options,
    )


async def publish(producer: ProducerHandle, topic: str, envelope: EventEnvelope[Any]) -> None:
    await producer.current().send_and_wait(
        topic,
        value=envelope.model_dump_json().encode(),
        key=str(envelope.complaint_id).encode(),
        headers=event_headers(envelope),
    )


async def write_to_outbox(lane: Lane, events: list[EventEnvelope[Any]]) -> None:
    async with lane.db.sessionmaker() as session, session.begin():
        for event in events:
            await lane.db.outbox.add(session, event)


class TestOutbox:
    async def test_rolled_back_transaction_publishes_nothing(self, lane: Lane, producer):
        event = probe_event(uuid.uuid4(), 1)

        async def failing_state_change() -> None:
            async with lane.db.sessionmaker() as session, session.begin():
                await lane.db.outbox.add(session, event)
                raise RuntimeError("state change failed")

        with pytest.raises(RuntimeError):
            await failing_state_change()
        relay = relay_for(lane, producer)
        assert await relay.publish_once() == 0
        assert await read_all(lane.bootstrap, lane.topic, timeout_ms=500) == []

    async def test_relay_is_woken_by_commit_not_only_by_polling(self, lane: Lane, producer):
        relay = relay_for(lane, producer, poll_interval_s=30)  # a poll alone would take 30 s
        lane.db.outbox.on_commit(relay.wake)
        task = asyncio.create_task(relay.run())
        try:
            await asyncio.sleep(0.3)  # let the first (empty) pass go to sleep
            await write_to_outbox(lane, [probe_event(uuid.uuid4(), 1)])
            await wait_until(lambda: _zero(relay), timeout_s=5, what="published")
        finally:
            relay.stop()
            await asyncio.wait_for(task, 10)
            lane.db.outbox.remove_listener(relay.wake)
        assert len(await read_all(lane.bootstrap, lane.topic)) == 1

    async def test_a_relay_in_another_replica_is_woken_by_notify(
        self, lane: Lane, producer, stack: StackUnderTest
    ):
        # A poll alone would take 30 s; only NOTIFY can wake it in time.
        relay = relay_for(
            lane, producer, poll_interval_s=30, listen_url=stack.admin_sqlalchemy_url()
        )
        # No in-process hook: the commit happens "in another replica".
        task = asyncio.create_task(relay.run())
        try:
            await asyncio.sleep(1.0)  # LISTEN connected, first (empty) pass asleep
            await write_to_outbox(lane, [probe_event(uuid.uuid4(), 1)])
            await wait_until(lambda: _zero(relay), timeout_s=5, what="published on NOTIFY")
        finally:
            relay.stop()
            await asyncio.wait_for(task, 10)
        assert len(await read_all(lane.bootstrap, lane.topic)) == 1

    async def test_two_relays_keep_per_complaint_order(self, lane: Lane, stack: StackUnderTest):
        complaints = [uuid.uuid4() for _ in range(8)]
        events = [probe_event(c, seq) for seq in range(40) for c in complaints]
        await write_to_outbox(lane, events)
        producers = [
            ProducerHandle(lambda i=i: create_producer(lane.bootstrap, client_id=f"relay-{i}"))
            for i in range(2)
        ]
        for p in producers:
            await p.start()
        relays = [
            relay_for(lane, p, batch_size=7, poll_interval_s=0.01, name=f"relay-{i}")
            for i, p in enumerate(producers)
        ]
        tasks = [asyncio.create_task(r.run()) for r in relays]
        try:
            await wait_until(lambda: _zero(relays[0]), timeout_s=30, what="outbox drained")
        finally:
            for relay in relays:
                relay.stop()
            await asyncio.gather(*tasks)
            for p in producers:
                await p.stop()
        messages = await read_all(lane.bootstrap, lane.topic)
        sequences: dict[str, list[int]] = defaultdict(list)
        for message in sorted(messages, key=lambda m: (m.partition, m.offset)):
            body = json.loads(message.value or b"{}")
            sequences[body["complaint_id"]].append(body["payload"]["sequence"])
        assert len(messages) == len(events)
        for complaint in complaints:
            assert sequences[str(complaint)] == list(range(40)), f"order broken for {complaint}"

    async def test_relay_killed_between_send_and_mark_duplicates_on_topic_not_in_effects(
        self, lane: Lane, producer
    ):
        class CrashAfterSend(OutboxRelay):
            async def _mark_published(self, session, ids):  # type: ignore[no-untyped-def]
                raise SystemExit("killed between send and mark")

        events = [probe_event(uuid.uuid4(), seq) for seq in range(5)]
        await write_to_outbox(lane, events)
        crashing = relay_for(lane, producer, CrashAfterSend)
        with pytest.raises(SystemExit):
            await crashing.publish_once()
        assert await crashing.backlog() == 5, "nothing may be marked when the relay died"

        healthy = relay_for(lane, producer)
        assert await healthy.publish_once() == 5
        on_topic = await read_all(lane.bootstrap, lane.topic)
        assert len(on_topic) == 10, "each event is on the topic twice"

        handler = CountingHandler(lane)
        consumer = make_consumer(lane, producer, handler, group=f"g-{uuid.uuid4().hex[:6]}")
        task = await running(consumer)
        try:
            await wait_until(lambda: _calls_at_least(handler, 5), timeout_s=20, what="5 effects")
            await asyncio.sleep(0.5)
        finally:
            await stop(consumer, task)
        assert await lane.db.count(lane.db.effects) == 5
        assert await lane.db.count(lane.db.inbox) == 5


class TestInbox:
    async def test_same_event_delivered_twice_has_one_effect(self, lane: Lane, producer):
        event = probe_event(uuid.uuid4(), 1)
        await publish(producer, lane.topic, event)
        await publish(producer, lane.topic, event)
        marker = probe_event(event.complaint_id, 2)  # same key: arrives after both copies
        await publish(producer, lane.topic, marker)
        handler = CountingHandler(lane)
        consumer = await consume_until_applied(lane, producer, handler, marker.event_id)
        assert await lane.db.count(lane.db.effects, event_id=event.event_id) == 1
        assert handler.calls == 2, "the duplicate must not reach the handler"
        assert consumer.outcomes["duplicate"] == 1

    async def test_a_batch_claim_returns_each_new_event_once(self, lane: Lane):
        seen, new, twice = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        async with lane.db.sessionmaker() as session, session.begin():
            assert await claim_event(
                session, lane.db.inbox, consumer="c", event_id=seen, event_type="t.seen"
            )
        batch = [(seen, "t.seen"), (new, "t.new"), (twice, "t.twice"), (twice, "t.twice")]
        async with lane.db.sessionmaker() as session, session.begin():
            fresh = await claim_events(session, lane.db.inbox, consumer="c", events=batch)
        assert fresh == {new, twice}
        assert await lane.db.count(lane.db.inbox, consumer="c") == 3
        async with lane.db.sessionmaker() as session, session.begin():
            # Another consumer's inbox rows are its own.
            fresh = await claim_events(session, lane.db.inbox, consumer="d", events=batch)
        assert fresh == {seen, new, twice}

    async def test_offsets_are_committed_so_a_restarted_consumer_does_not_reapply(
        self, lane: Lane, producer
    ):
        complaint = uuid.uuid4()
        for seq in range(10):
            await publish(producer, lane.topic, probe_event(complaint, seq))
        group = f"g-{uuid.uuid4().hex[:6]}"
        first = CountingHandler(lane)
        consumer = make_consumer(lane, producer, first, group=group)
        task = await running(consumer)
        await wait_until(lambda: _calls_at_least(first, 10), timeout_s=20, what="10 handled")
        await stop(consumer, task)

        second = CountingHandler(lane)
        consumer = make_consumer(lane, producer, second, group=group)
        task = await running(consumer)
        await asyncio.sleep(3)
        await stop(consumer, task)
        assert second.calls == 0
        assert await lane.db.count(lane.db.effects) == 10

    async def test_commits_survive_a_rebalance_to_a_second_member(self, lane: Lane, producer):
        complaints = [uuid.uuid4() for _ in range(12)]
        for seq in range(50):
            for complaint in complaints:
                await publish(producer, lane.topic, probe_event(complaint, seq))
        total = 50 * len(complaints)
        group = f"g-{uuid.uuid4().hex[:6]}"
        # ~6 s of work for one member in batches of up to 200 (2 s each): the rebalance
        # waits for a batch in hand, and plenty is left to share afterwards.
        handler = CountingHandler(lane, delay_s=0.01)
        first = make_consumer(lane, producer, handler, group=group)
        first_task = await running(first)
        await wait_until(
            lambda: _calls_at_least(handler, 30), timeout_s=20, what="first member busy"
        )
        second = make_consumer(lane, producer, handler, group=group)
        second_task = await running(second)
        try:
            await wait_until(
                lambda: _count_at_least(lane, total), timeout_s=60, what=f"{total} effects"
            )
        finally:
            await stop(second, second_task)
            await stop(first, first_task)
        assert await lane.db.count(lane.db.effects) == total
        redelivered = first.outcomes["duplicate"] + second.outcomes["duplicate"]
        assert redelivered == 0, f"{redelivered} records handled before the rebalance came again"
        assert first.outcomes["handled"] + second.outcomes["handled"] == total
        assert second.outcomes["handled"] > 0, "the second member took over partitions mid-flow"


class TestDeadLetters:
    async def test_poison_messages_go_to_the_dlq_and_the_consumer_keeps_going(
        self, lane: Lane, producer
    ):
        complaint = uuid.uuid4()
        await producer.current().send_and_wait(
            lane.topic, value=b"\x00not json", key=str(complaint).encode()
        )
        future = probe_event(complaint, 1).model_dump(mode="json")
        future["schema_version"] = 99
        await producer.current().send_and_wait(
            lane.topic,
            value=json.dumps(future).encode(),
            key=str(complaint).encode(),
            headers=[("origin", b"x")],
        )
        good = probe_event(complaint, 2)
        await publish(producer, lane.topic, good)
        await consume_until_applied(lane, producer, CountingHandler(lane), good.event_id)
        dead = await read_all(lane.bootstrap, lane.dlq)
        assert len(dead) == 2
        by_value = {m.value: m for m in dead}
        garbage = by_value[b"\x00not json"]
        assert "invalid envelope" in (garbage.header("dlq.error") or "")
        assert garbage.header("dlq.original_topic") == lane.topic
        assert garbage.header("dlq.original_offset") is not None
        versioned = next(m for m in dead if m.value != b"\x00not json")
        assert "v99" in (versioned.header("dlq.error") or "")
        assert versioned.header("origin") == "x", "original headers are kept"

    async def test_failing_handler_is_retried_then_dead_lettered_then_replayed_after_a_fix(
        self, lane: Lane, producer
    ):
        complaint = uuid.uuid4()
        failing, after = probe_event(complaint, 13), probe_event(complaint, 14)
        await publish(producer, lane.topic, failing)
        await publish(producer, lane.topic, after)
        handler = CountingHandler(lane, fail_sequences={13})
        group = f"g-{uuid.uuid4().hex[:6]}"
        consumer = make_consumer(lane, producer, handler, group=group)
        task = await running(consumer)
        try:
            await wait_until(
                lambda: lane.db.count(lane.db.effects, event_id=after.event_id), timeout_s=20
            )
            # One try inside the batch (rolled back whole), then three on its own; then the
            # next event, applied on its own too.
            assert handler.calls == 1 + 3 + 1
            dead = await read_all(lane.bootstrap, lane.dlq)
            assert len(dead) == 1
            assert dead[0].header("dlq.attempts") == "3"
            assert "refuses sequence 13" in (dead[0].header("dlq.error") or "")
            assert await lane.db.count(lane.db.effects, event_id=failing.event_id) == 0

            handler.fail_sequences.clear()  # the fix is deployed
            result = await replay_dead_letters(lane.bootstrap, lane.dlq, group_id=f"replay-{group}")
            assert result.replayed == 1
            await wait_until(
                lambda: lane.db.count(lane.db.effects, event_id=failing.event_id), timeout_s=20
            )
        finally:
            await stop(consumer, task)
        again = await replay_dead_letters(lane.bootstrap, lane.dlq, group_id=f"replay-{group}")
        assert again.replayed == 0, "a replay run replays each dead letter once"


class TestRelayUnderSendFailures:
    async def test_a_failed_row_holds_back_later_rows_of_its_key_but_not_other_keys(
        self, lane: Lane, stack: StackUnderTest
    ):
        # A topic that does not exist (auto-create is off) makes the real producer fail
        # those sends with UnknownTopicOrPartitionError after its request timeout.
        missing = f"missing-{uuid.uuid4().hex[:6]}"
        a, b = uuid.uuid4(), uuid.uuid4()
        rows = [(a, 1, TOPIC), (a, 2, missing), (a, 3, TOPIC), (b, 1, TOPIC)]
        async with lane.db.sessionmaker() as session, session.begin():
            for complaint, sequence, topic in rows:
                event = probe_event(complaint, sequence)
                await session.execute(
                    insert(lane.db.outbox.table).values(
                        event_id=event.event_id,
                        event_type=event.event_type,
                        topic=topic,
                        message_key=str(complaint),
                        headers=[[k, v.decode()] for k, v in event_headers(event)],
                        body=event.model_dump_json(),
                    )
                )
        handle = ProducerHandle(
            lambda: create_producer(lane.bootstrap, client_id="short", request_timeout_ms=2000)
        )
        await handle.start()
        try:
            relay = relay_for(lane, handle)
            with pytest.raises(RelaySendError):
                await relay.publish_once()
            unpublished = await _unpublished_sequences(lane)
            assert unpublished == [(str(a), 2), (str(a), 3)], "b and a's first row go ahead"

            await ensure_topics(lane.bootstrap, [f"{lane.prefix}{missing}"], partitions=1)
            await handle.reset()
            assert await relay.publish_once() == 2
        finally:
            await handle.stop()
            await delete_topics(lane.bootstrap, [f"{lane.prefix}{missing}"])
        on_topic = await read_all(lane.bootstrap, lane.topic)
        sequences = [
            (
                json.loads(m.value or b"{}")["complaint_id"],
                json.loads(m.value or b"")["payload"]["sequence"],
            )
            for m in sorted(on_topic, key=lambda m: (m.partition, m.offset))
        ]
        assert [seq for key, seq in sequences if key == str(a)] == [1, 3], "each row once, in order"
        assert [seq for key, seq in sequences if key == str(b)] == [1]

    async def test_stop_publishes_everything_already_committed(self, lane: Lane, producer):
        await write_to_outbox(lane, [probe_event(uuid.uuid4(), seq) for seq in range(600)])
        relay = relay_for(lane, producer, batch_size=50)
        task = asyncio.create_task(relay.run())
        relay.stop()  # before the first batch is even out
        await asyncio.wait_for(task, 30)
        assert await relay.backlog() == 0
        assert len(await read_all(lane.bootstrap, lane.topic)) == 600

    async def test_the_oldest_unpublished_age_is_measured(self, lane: Lane, producer):
        relay = relay_for(lane, producer)
        assert await relay.oldest_unpublished_age_s() == 0
        await write_to_outbox(lane, [probe_event(uuid.uuid4(), 1)])
        async with lane.db.sessionmaker() as session, session.begin():
            await session.execute(
                update(lane.db.outbox.table).values(created_at=func.now() - timedelta(minutes=5))
            )
        assert await relay.oldest_unpublished_age_s() >= 299
        await relay.publish_once()
        assert await relay.oldest_unpublished_age_s() == 0

    async def test_after_a_database_failure_a_commit_wakes_the_relay_before_its_backoff_ends(
        self, lane: Lane, producer, stack: StackUnderTest
    ):
        relay = relay_for(lane, producer, poll_interval_s=30, max_backoff_s=60)
        relay.consecutive_failures = 8  # the next failure backs off for the full 60 s
        lane.db.outbox.on_commit(relay.wake)
        admin = await asyncpg.connect(stack.admin_dsn())
        database = stack.database
        failures = messaging_metrics.RELAY_FAILURES.labels(lane.db.schema)
        before = failures._value.get()
        task = None
        try:
            # A failover to a read-only standby: the relay's claim fails with SQLSTATE 25006.
            await admin.execute(
                f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'
            )
            await lane.db.engine.dispose()
            task = asyncio.create_task(relay.run())
            await wait_until(
                lambda: _value_above(failures, before), timeout_s=10, what="a relay failure"
            )
            await admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
            await lane.db.engine.dispose()
            await write_to_outbox(lane, [probe_event(uuid.uuid4(), 1)])  # the primary is back
            await wait_until(lambda: _zero(relay), timeout_s=10, what="published long before 60 s")
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
            await admin.close()
            relay.stop()
            lane.db.outbox.remove_listener(relay.wake)
            if task is not None:
                await asyncio.wait_for(task, 15)
            await lane.db.engine.dispose()


class TestConsumerGroupChanges:
    async def test_a_slow_batch_never_gets_a_member_evicted_on_rebalance(
        self, lane: Lane, producer
    ):
        # 100 records of 0.1 s each is a 10 s batch, beyond a 6 s rebalance timeout: a
        # member that finishes its batch before giving up partitions is evicted, and the
        # records it applied meanwhile come again to the new owner.
        # 24 keys so every one of the 3 partitions has records whichever the second member
        # gets (with 6 keys a partition stayed empty about one run in ten).
        complaints = [uuid.uuid4() for _ in range(24)]
        for seq in range(8):
            for complaint in complaints:
                await publish(producer, lane.topic, probe_event(complaint, seq))
        total = 8 * len(complaints)
        group = f"g-{uuid.uuid4().hex[:6]}"
        handler = CountingHandler(lane, delay_s=0.1)
        # The session timeout has headroom (a starved heartbeat on a busy machine is not what
        # this tests); the rebalance timeout is what a slow batch must not outlast.
        timeouts = {"session_timeout_ms": 10_000, "rebalance_timeout_ms": 6000}
        first = make_consumer(lane, producer, handler, group=group, **timeouts)
        first_task = await running(first)
        await wait_until(lambda: _calls_at_least(handler, 5), timeout_s=20, what="first busy")
        second = make_consumer(lane, producer, handler, group=group, **timeouts)
        second_task = await running(second)
        try:
            await wait_until(
                lambda: _count_at_least(lane, total), timeout_s=90, what=f"{total} effects"
            )
        finally:
            await stop(second, second_task)
            await stop(first, first_task)
        assert await lane.db.count(lane.db.effects) == total
        redelivered = first.outcomes["duplicate"] + second.outcomes["duplicate"]
        assert redelivered == 0, f"{redelivered} records were delivered twice"
        assert second.outcomes["handled"] > 0, "the second member took partitions mid-batch"

    async def test_stopping_mid_stream_leaves_nothing_to_redeliver(self, lane: Lane, producer):
        complaints = [uuid.uuid4() for _ in range(6)]
        for seq in range(60):
            for complaint in complaints:
                await publish(producer, lane.topic, probe_event(complaint, seq))
        total = 60 * len(complaints)
        group = f"g-{uuid.uuid4().hex[:6]}"
        handler = CountingHandler(lane, delay_s=0.005)
        for _round in range(3):  # stop and restart the member mid-stream a few times
            consumer = make_consumer(lane, producer, handler, group=group)
            task = await running(consumer)
            target = min(handler.calls + 60, total)
            await wait_until(lambda t=target: _calls_at_least(handler, t), timeout_s=30)
            await stop(consumer, task)
            assert consumer.outcomes["duplicate"] == 0, "a record applied was not committed"
        last = make_consumer(lane, producer, handler, group=group)
        task = await running(last)
        try:
            await wait_until(lambda: _count_at_least(lane, total), timeout_s=60)
        finally:
            await stop(last, task)
        assert last.outcomes["duplicate"] == 0
        assert await lane.db.count(lane.db.effects) == total


class TestSkippedFromHeaders:
    async def test_unknown_event_types_are_skipped_without_parsing_the_body(
        self, lane: Lane, producer
    ):
        complaint = uuid.uuid4()
        await producer.current().send_and_wait(
            lane.topic,
            value=b'{"complaint_id": "not-a-uuid", "payload": {"shape": "from the future"}}',
            key=str(complaint).encode(),
            headers=[("event_type", b"complaint.teleported"), ("schema_version", b"3")],
        )
        marker = probe_event(complaint, 1)
        await publish(producer, lane.topic, marker)
        consumer = await consume_until_applied(
            lane, producer, CountingHandler(lane), marker.event_id
        )
        assert consumer.outcomes["ignored"] == 1
        assert consumer.outcomes["dead_lettered"] == 0
        assert await read_all(lane.bootstrap, lane.dlq, timeout_ms=500) == []

    async def test_a_replay_meant_for_another_group_is_skipped(self, lane: Lane, producer):
        complaint = uuid.uuid4()
        replayed = probe_event(complaint, 1)
        await producer.current().send_and_wait(
            lane.topic,
            value=replayed.model_dump_json().encode(),
            key=str(complaint).encode(),
            headers=[*event_headers(replayed), (REPLAY_FOR_GROUP_HEADER, b"some-other-group")],
        )
        marker = probe_event(complaint, 2)
        await publish(producer, lane.topic, marker)
        handler = CountingHandler(lane)
        consumer = await consume_until_applied(lane, producer, handler, marker.event_id)
        assert await lane.db.count(lane.db.effects, event_id=replayed.event_id) == 0
        assert consumer.outcomes["ignored"] == 1


class TestDatabaseUnavailable:
    async def test_a_read_only_failover_blocks_and_retries_instead_of_dead_lettering(
        self, lane: Lane, producer, stack: StackUnderTest
    ):
        # As after a failover to a standby: every new session is read-only, so the
        # handler's write fails with SQLSTATE 25006 until the primary is back.
        admin = await asyncpg.connect(stack.admin_dsn())
        database = stack.database
        try:
            await admin.execute(
                f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'
            )
            await lane.db.engine.dispose()  # pooled sessions predate the switch
            event = probe_event(uuid.uuid4(), 1)
            await publish(producer, lane.topic, event)
            handler = CountingHandler(lane)
            group = f"g-{uuid.uuid4().hex[:6]}"
            consumer = make_consumer(
                lane, producer, handler, group=group, retry=RetryPolicy(max_attempts=1)
            )
            task = await running(consumer)
            try:
                await asyncio.sleep(3)  # the outage lasts this long; every attempt fails
                assert consumer.outcomes["dead_lettered"] == 0
                assert consumer.outcomes["handled"] == 0
                await admin.execute(
                    f'ALTER DATABASE "{database}" RESET default_transaction_read_only'
                )
                await lane.db.engine.dispose()
                await wait_until(
                    lambda: lane.db.count(lane.db.effects, event_id=event.event_id),
                    timeout_s=30,
                    what="effect after the primary is back",
                )
            finally:
                await stop(consumer, task)
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
            await admin.close()
            await lane.db.engine.dispose()
        assert consumer.outcomes["dead_lettered"] == 0
        assert await read_all(lane.bootstrap, lane.dlq, timeout_ms=500) == []

    async def test_a_terminated_backend_mid_handler_is_retried_not_dead_lettered(
        self, lane: Lane, producer, stack: StackUnderTest
    ):
        event = probe_event(uuid.uuid4(), 1)
        await publish(producer, lane.topic, event)

        class SlowFirstCall(CountingHandler):
            async def __call__(self, session: AsyncSession, event: EventEnvelope[Any]) -> None:
                if self.calls == 0:
                    self.calls += 1
                    await session.execute(text("SELECT pg_sleep(30) /* terminate-me */"))
                await super().__call__(session, event)

        handler = SlowFirstCall(lane)
        consumer = make_consumer(
            lane,
            producer,
            handler,
            group=f"g-{uuid.uuid4().hex[:6]}",
            retry=RetryPolicy(max_attempts=1),
        )
        task = await running(consumer)
        admin = await asyncpg.connect(stack.admin_dsn())
        try:

            async def terminated() -> bool:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE query LIKE '%terminate-me%' AND pid <> pg_backend_pid()"
                )
                return bool(killed)

            await wait_until(terminated, timeout_s=20, what="the handler's backend")
            await wait_until(
                lambda: lane.db.count(lane.db.effects, event_id=event.event_id), timeout_s=30
            )
        finally:
            await admin.close()
            await stop(consumer, task)
        assert consumer.outcomes["dead_lettered"] == 0


async def _value_above(counter: Any, value: float) -> bool:
    return bool(counter._value.get() > value)


async def _unpublished_sequences(lane: Lane) -> list[tuple[str, int]]:
    async with lane.db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(lane.db.outbox.table.c.message_key, lane.db.outbox.table.c.body)
                .where(lane.db.outbox.table.c.published_at.is_(None))
                .order_by(lane.db.outbox.table.c.id)
            )
        ).all()
    return [(key, json.loads(body)["payload"]["sequence"]) for key, body in rows]


async def _zero(relay: OutboxRelay) -> bool:
    return await relay.backlog() == 0


async def _calls_at_least(handler: CountingHandler, n: int) -> bool:
    return handler.calls >= n


async def _count_at_least(lane: Lane, n: int) -> bool:
    return await lane.db.count(lane.db.effects) >= n
