"""aiokafka factories with the platform's safe defaults, and topic administration."""

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

logger = logging.getLogger(__name__)


def create_producer(bootstrap_servers: str, *, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer: acks from all replicas, no duplicates or reordering on retry."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=30_000,
    )


def create_consumer(
    bootstrap_servers: str,
    *,
    group_id: str,
    client_id: str,
    session_timeout_ms: int = 10_000,
    max_poll_records: int = 200,
) -> AIOKafkaConsumer:
    """A group consumer that never auto-commits and starts new groups at the beginning."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 4, 500),
        max_poll_records=max_poll_records,
        isolation_level="read_committed",
    )


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    timeout_s: float = 60.0,
) -> dict[str, str]:
    """Creates missing topics and grows ones with fewer partitions; returns what it did."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000)
    await asyncio.wait_for(admin.start(), timeout_s)
    outcome: dict[str, str] = {}
    try:
        wanted = list(dict.fromkeys(topics))
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if missing:
            # Another process may create them first: that is the goal anyway.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(name, partitions, replication_factor) for name in missing]
                )
            outcome.update({name: "created" for name in missing})
        present = [name for name in wanted if name in existing]
        if present:
            described = await admin.describe_topics(present)
            grow = {}
            for topic in described:
                count = len(topic["partitions"])
                if count < partitions:
                    grow[topic["topic"]] = NewPartitions(partitions)
                    outcome[topic["topic"]] = f"grown {count}->{partitions}"
                else:
                    outcome[topic["topic"]] = f"exists ({count} partitions)"
            if grow:
                # Adding partitions remaps keys; only safe before traffic flows.
                logger.warning("growing partitions of %s", sorted(grow))
                await admin.create_partitions(grow)
        await _wait_for_leaders(admin, wanted, timeout_s)
    finally:
        await admin.close()
    return outcome


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        described = await admin.describe_topics(topics)
        ready = all(
            topic["error_code"] == 0
            and topic["partitions"]
            and all(p["leader"] >= 0 for p in topic["partitions"])
            for topic in described
        )
        if ready:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"topics without leaders after {timeout_s}s: {topics}")
        await asyncio.sleep(0.2)


async def delete_topics(bootstrap_servers: str, topics: Iterable[str]) -> None:
    """Deletes topics (tests clean up after themselves)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [name for name in topics if name in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
