"""The broker itself, as the project starts it: idempotent producer, group rebalancing."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer

from shared.messaging import create_consumer, create_producer, ensure_topics
from shared.messaging.kafka import delete_topics
from tests.support.kafka import read_all
from tests.support.stack import StackUnderTest
from tests.support.waiting import wait_until

pytestmark = pytest.mark.stack


@pytest.fixture
async def topic(stack: StackUnderTest) -> AsyncIterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.config.kafka_bootstrap, [name], partitions=6)
    yield name
    await delete_topics(stack.config.kafka_bootstrap, [name])


async def test_idempotent_producer_writes_each_message_once_in_order(stack, topic):
    producer = create_producer(stack.config.kafka_bootstrap, client_id="smoke")
    await producer.start()
    try:
        assert producer._txn_manager is not None, "idempotence must be on"
        assert producer._txn_manager.producer_id >= 0, "the broker granted a producer id"
        futures = [
            await producer.send(topic, value=str(i).encode(), key=b"one-key") for i in range(200)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    messages = await read_all(stack.config.kafka_bootstrap, topic)
    assert [int(m.value or b"-1") for m in messages] == list(range(200))
    assert len({m.partition for m in messages}) == 1, "one key, one partition"


async def test_consumer_group_rebalances_partitions_between_two_members(stack, topic):
    group = f"smoke-{uuid.uuid4().hex[:6]}"
    first = create_consumer(stack.config.kafka_bootstrap, group_id=group, client_id="first")
    second = create_consumer(stack.config.kafka_bootstrap, group_id=group, client_id="second")
    first.subscribe([topic])
    await first.start()
    polling: list[asyncio.Task[object]] = []

    def keep_polling(consumer: AIOKafkaConsumer) -> None:
        polling.append(asyncio.create_task(_poll_forever(consumer)))

    try:
        keep_polling(first)
        await wait_until(lambda: _assigned(first, 6), timeout_s=20, what="first member owns all 6")
        second.subscribe([topic])
        await second.start()
        keep_polling(second)
        await wait_until(
            lambda: _split(first, second), timeout_s=30, what="partitions split between two members"
        )
        mine, theirs = first.assignment(), second.assignment()
        assert not mine & theirs
        assert len(mine | theirs) == 6
        await second.stop()
        await wait_until(
            lambda: _assigned(first, 6), timeout_s=30, what="first member takes all back"
        )
    finally:
        for task in polling:
            task.cancel()
        await asyncio.gather(*polling, return_exceptions=True)
        await first.stop()
        await second.stop()


async def _poll_forever(consumer: AIOKafkaConsumer) -> None:
    while True:
        await consumer.getmany(timeout_ms=200)


async def _assigned(consumer: AIOKafkaConsumer, n: int) -> bool:
    return len(consumer.assignment()) == n


async def _split(a: AIOKafkaConsumer, b: AIOKafkaConsumer) -> bool:
    return len(a.assignment()) == 3 and len(b.assignment()) == 3
