"""Replaying dead-lettered messages to their original topic after a fix."""

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer, TopicPartition

from shared.events.topics import DLQ_SUFFIX
from shared.messaging.headers import header_value
from shared.messaging.kafka import create_consumer, create_producer

logger = logging.getLogger(__name__)

REPLAY_COUNT_HEADER = "dlq.replay_count"


@dataclass(frozen=True)
class ReplayResult:
    """What a replay run did."""

    replayed: int
    skipped: int


async def replay_dead_letters(
    bootstrap_servers: str,
    dlq: str,
    *,
    group_id: str = "dlq-replayer",
    limit: int | None = None,
    idle_timeout_ms: int = 3000,
) -> ReplayResult:
    """Republishes messages of a dead-letter topic to their original topic, once each.

    Progress is the replayer group's committed offset, so a second run replays only
    messages dead-lettered since the first. Stops when caught up or after `limit`.
    """
    if not dlq.endswith(DLQ_SUFFIX):
        raise ValueError(f"{dlq!r} is not a dead-letter topic (must end with {DLQ_SUFFIX})")
    consumer = create_consumer(bootstrap_servers, group_id=group_id, client_id="dlq-replayer")
    producer: AIOKafkaProducer = create_producer(bootstrap_servers, client_id="dlq-replayer")
    consumer.subscribe([dlq])
    await consumer.start()
    await producer.start()
    replayed = skipped = 0
    try:
        while limit is None or replayed + skipped < limit:
            batches = await consumer.getmany(timeout_ms=idle_timeout_ms, max_records=100)
            if not batches:
                break
            offsets: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                for record in records:
                    if limit is not None and replayed + skipped >= limit:
                        break
                    original = header_value(
                        record.headers, "dlq.original_topic"
                    ) or dlq.removesuffix(DLQ_SUFFIX)
                    if original.endswith(DLQ_SUFFIX):
                        skipped += 1
                    else:
                        count = int(header_value(record.headers, REPLAY_COUNT_HEADER) or 0) + 1
                        headers = [
                            (key, value)
                            for key, value in (record.headers or ())
                            if not key.startswith("dlq.")
                        ] + [(REPLAY_COUNT_HEADER, str(count).encode())]
                        await producer.send_and_wait(
                            original, value=record.value, key=record.key, headers=headers
                        )
                        replayed += 1
                    offsets[tp] = record.offset + 1
            if offsets:
                await consumer.commit(offsets)
    finally:
        await producer.stop()
        await consumer.stop()
    logger.info("dlq replay done", extra={"dlq": dlq, "replayed": replayed, "skipped": skipped})
    return ReplayResult(replayed=replayed, skipped=skipped)
