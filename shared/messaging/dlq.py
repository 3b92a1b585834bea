"""Replaying dead-lettered messages to their original topic, for the group that failed them."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from shared.events.topics import DLQ_SUFFIX
from shared.messaging.headers import REPLAY_FOR_GROUP_HEADER, Headers, header_value
from shared.messaging.kafka import create_consumer, create_producer

logger = logging.getLogger(__name__)

REPLAY_COUNT_HEADER = "dlq.replay_count"
# Written by the consumer that dead-lettered the message (shared.messaging.consumer).
CONSUMER_GROUP_HEADER = "dlq.consumer_group"
ORIGINAL_TOPIC_HEADER = "dlq.original_topic"


@dataclass(frozen=True)
class ReplayResult:
    """What a replay run did."""

    replayed: int
    # dead letters of a dead-letter topic (nested), never replayed
    skipped: int
    # dead letters of other consumer groups, left alone by a `for_group` run
    other_groups: int = 0


def replay_progress_group(group_id: str, for_group: str | None) -> str:
    """The replayer's own consumer group: one per target group, so filtered runs never
    consume (and so lose) the dead letters of other groups."""
    return group_id if for_group is None else f"{group_id}.for.{for_group}"


def replay_headers(
    record_headers: Sequence[tuple[str, bytes]] | None, *, for_group: str | None
) -> Headers:
    """Headers of a replayed message: the original ones, without the dead-letter details,
    plus the replay count and the group it is meant for."""
    count = int(header_value(record_headers, REPLAY_COUNT_HEADER) or 0) + 1
    headers: Headers = [
        (key, value) for key, value in (record_headers or ()) if not key.startswith("dlq.")
    ]
    headers.append((REPLAY_COUNT_HEADER, str(count).encode()))
    if for_group:
        headers.append((REPLAY_FOR_GROUP_HEADER, for_group.encode()))
    return headers


async def replay_dead_letters(
    bootstrap_servers: str,
    dlq: str,
    *,
    group_id: str = "dlq-replayer",
    for_group: str | None = None,
    limit: int | None = None,
    idle_timeout_ms: int = 3000,
    security: Mapping[str, Any] | None = None,
) -> ReplayResult:
    """Republishes messages of a dead-letter topic to their original topic, once each.

    Each replay carries `dlq.replay_for_group` = the consumer group that dead-lettered it, so
    only that group handles it again; the other groups of the topic skip it. With `for_group`
    only that group's dead letters are replayed (a dead letter naming no group is replayed for
    `for_group`). Progress is the replayer group's committed offset (one group per `for_group`),
    so a second run replays only messages dead-lettered since the first. Stops when caught up or
    after `limit` dead letters. `security`: the admin principal's SASL/TLS options, if any.
    """
    if not dlq.endswith(DLQ_SUFFIX):
        raise ValueError(f"{dlq!r} is not a dead-letter topic (must end with {DLQ_SUFFIX})")
    consumer = create_consumer(
        bootstrap_servers,
        group_id=replay_progress_group(group_id, for_group),
        client_id="dlq-replayer",
        security=security,
    )
    producer: AIOKafkaProducer = create_producer(
        bootstrap_servers, client_id="dlq-replayer", security=security
    )
    consumer.subscribe([dlq])
    await consumer.start()
    await producer.start()
    replayed = skipped = other_groups = 0
    try:
        while limit is None or replayed + skipped + other_groups < limit:
            batches = await consumer.getmany(timeout_ms=idle_timeout_ms, max_records=100)
            if not batches:
                break
            offsets: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                for record in records:
                    if limit is not None and replayed + skipped + other_groups >= limit:
                        break
                    offsets[tp] = record.offset + 1
                    original = header_value(
                        record.headers, ORIGINAL_TOPIC_HEADER
                    ) or dlq.removesuffix(DLQ_SUFFIX)
                    failed_group = header_value(record.headers, CONSUMER_GROUP_HEADER)
                    if original.endswith(DLQ_SUFFIX):
                        skipped += 1
                        continue
                    if for_group is not None and failed_group not in (None, "", for_group):
                        other_groups += 1
                        continue
                    target = failed_group or for_group
                    if not target:
                        # Only hand-made dead letters lack the group: every group sees them.
                        logger.warning(
                            "dead letter without %s replayed to every group",
                            CONSUMER_GROUP_HEADER,
                            extra={"dlq": dlq, "offset": record.offset},
                        )
                    await producer.send_and_wait(
                        original,
                        value=record.value,
                        key=record.key,
                        headers=replay_headers(record.headers, for_group=target),
                    )
                    replayed += 1
            if offsets:
                await consumer.commit(offsets)
    finally:
        await producer.stop()
        await consumer.stop()
    logger.info(
        "dlq replay done",
        extra={
            "dlq": dlq,
            "for_group": for_group,
            "replayed": replayed,
            "skipped": skipped,
            "other_groups": other_groups,
        },
    )
    return ReplayResult(replayed=replayed, skipped=skipped, other_groups=other_groups)
