"""Reading topics whole, for assertions; publishing an event as a service would."""

import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events import EventEnvelope
from shared.messaging import create_producer
from shared.messaging.headers import event_headers, header_value


@dataclass(frozen=True)
class Message:
    """A consumed message, decoded enough for assertions."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        """One header as text."""
        return header_value(self.headers, name)


async def read_all(bootstrap: str, topic: str, *, timeout_ms: int = 1500) -> list[Message]:
    """Reads every message currently in a topic (all partitions, from the beginning)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        # With group_id=None aiokafka's NoGroupCoordinator can raise CancelledError from
        # stop() when its task never ran; a throwaway group (never committed) avoids that.
        group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"test-reader-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:
        # A consumer's own metadata only tracks topics it subscribed to: ask the cluster.
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic) or set()
        if not partitions:
            raise AssertionError(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        messages: list[Message] = []
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=timeout_ms)
            if not batches:
                break
            for tp, records in batches.items():
                for record in records:
                    messages.append(
                        Message(
                            topic=record.topic,
                            partition=record.partition,
                            offset=record.offset,
                            key=record.key,
                            value=record.value,
                            headers=tuple(record.headers or ()),
                        )
                    )
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return messages
    finally:
        await consumer.stop()


async def publish_event(bootstrap: str, topic: str, envelope: EventEnvelope[Any]) -> None:
    """Publishes one event as a service's outbox relay does: keyed by complaint, with headers."""
    producer = create_producer(bootstrap, client_id=f"test-publisher-{uuid.uuid4().hex[:6]}")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            value=envelope.model_dump_json().encode(),
            key=str(envelope.complaint_id).encode(),
            headers=event_headers(envelope),
        )
    finally:
        await producer.stop()
