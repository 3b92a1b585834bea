"""Complaints flowing while infrastructure fails, and the exactly-once checks afterwards."""

import asyncio
import json
import time
import uuid
from collections import defaultdict

import asyncpg
import httpx

from shared.events import Topic, dlq_topic
from tests.support.complaints import complaint_body, post_complaint
from tests.support.kafka import read_all
from tests.support.stack import StackUnderTest
from tests.support.waiting import wait_until

SCHEMAS_AND_TOPICS = {
    "intake": Topic.INTAKE_COMPLAINT,
    "triage": Topic.TRIAGE_COMPLAINT,
    "resolution": Topic.RESOLUTION_CASE,
    "notification": Topic.NOTIFICATION_DELIVERY,
}
# The one event each complaint causes in each service: exactly once each, after any fault.
EFFECT_EVENTS = {
    "triage": "complaint.triaged",
    "resolution": "case.opened",
    "notification": "acknowledgement.recorded",
}


class Storefront:
    """Posts complaints at a steady rate, retrying each with its Idempotency-Key until 201."""

    def __init__(self, intake_url: str, *, label: str) -> None:
        self.intake_url = intake_url
        self.label = label
        self.accepted: list[uuid.UUID] = []
        self.retries = 0
        self.started = 0

    async def run(self, count: int, rate_per_s: float) -> list[uuid.UUID]:
        """Posts `count` complaints at `rate_per_s`; returns their ids once all are accepted."""
        async with httpx.AsyncClient(timeout=10) as client:
            posts = []
            for n in range(count):
                posts.append(asyncio.create_task(self._post_until_accepted(client, n)))
                self.started += 1
                await asyncio.sleep(1 / rate_per_s)
            return list(await asyncio.gather(*posts))

    async def _post_until_accepted(self, client: httpx.AsyncClient, n: int) -> uuid.UUID:
        body = complaint_body(n, description=f"{self.label} complaint {n}: the parcel was crushed")
        key = f"{self.label}-{n}"
        deadline = time.monotonic() + 180
        while True:
            try:
                response = await post_complaint(
                    client, self.intake_url, body, **{"Idempotency-Key": key}
                )
                if response.status_code == 201:
                    complaint_id = uuid.UUID(response.json()["complaint_id"])
                    self.accepted.append(complaint_id)
                    return complaint_id
                # 503 (database down) and 422 "in use by a concurrent request" are retried.
                retryable = response.status_code >= 500 or "concurrent" in response.text
                assert retryable, f"{response.status_code}: {response.text}"
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"complaint {n} never accepted"
            self.retries += 1
            await asyncio.sleep(0.5)


async def wait_until_accepted(storefront: Storefront, n: int) -> None:
    """Waits until at least `n` complaints were accepted (the fault then hits a live flow)."""

    async def enough() -> bool:
        return len(storefront.accepted) >= n

    await wait_until(enough, timeout_s=60, what=f"{n} accepted complaints")


async def assert_each_complaint_handled_exactly_once(
    stack: StackUnderTest, ids: list[uuid.UUID], *, timeout_s: float = 180
) -> None:
    """Every complaint triaged, opened and acknowledged once; no dead letter; order kept."""
    assert len(set(ids)) == len(ids)

    async def acknowledged() -> bool:
        conn = await _connect(stack)
        try:
            count = await conn.fetchval(
                "SELECT count(*) FROM notification.notifications "
                "WHERE complaint_id = ANY($1) AND status = 'recorded'",
                ids,
            )
        finally:
            await conn.close()
        return int(count) == len(ids)

    await wait_until(acknowledged, timeout_s=timeout_s, interval_s=0.5, what="all acknowledged")

    async def published() -> bool:
        # A relay may still be backing off from the fault when the last effect commits.
        conn = await _connect(stack)
        try:
            unpublished = 0
            for schema in SCHEMAS_AND_TOPICS:
                unpublished += int(
                    await conn.fetchval(
                        f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
                    )
                )
        finally:
            await conn.close()
        return unpublished == 0

    await wait_until(published, timeout_s=60, interval_s=0.5, what="every outbox published")
    conn = await _connect(stack)
    try:
        for schema, event_type in EFFECT_EVENTS.items():
            rows = await conn.fetch(
                f"SELECT message_key, count(*) AS n FROM {schema}.outbox "
                "WHERE event_type = $1 AND message_key = ANY($2) GROUP BY message_key",
                event_type,
                [str(i) for i in ids],
            )
            counts = {row["message_key"]: row["n"] for row in rows}
            assert len(counts) == len(ids), f"{schema}: {len(ids) - len(counts)} lack {event_type}"
            doubled = {key: n for key, n in counts.items() if n != 1}
            assert not doubled, f"{schema}: {event_type} emitted more than once: {doubled}"
        await _assert_topics_keep_outbox_order(conn, stack)
    finally:
        await conn.close()
    await _assert_no_dead_letters(stack)


async def _assert_topics_keep_outbox_order(conn: asyncpg.Connection, stack: StackUnderTest) -> None:
    """On each topic, every key's events first appear in the order of their outbox rows.

    Only rows already published are compared: services keep emitting after the load (e.g.
    notification's delivery outcomes on its timers), and a relay publishes a key's rows in
    order, so the published ones are a prefix of each key's rows and all on the topic.
    """
    for schema, topic in SCHEMAS_AND_TOPICS.items():
        outbox_rows = await conn.fetch(
            f"SELECT event_id, message_key FROM {schema}.outbox "
            "WHERE published_at IS NOT NULL ORDER BY id"
        )
        expected: dict[str, list[str]] = defaultdict(list)
        for row in outbox_rows:
            expected[row["message_key"]].append(str(row["event_id"]))
        seen: dict[str, list[str]] = defaultdict(list)
        messages = await read_all(
            stack.config.kafka_bootstrap, f"{stack.config.topic_prefix}{topic.value}"
        )
        for message in sorted(messages, key=lambda m: (m.partition, m.offset)):
            event_id = json.loads(message.value or b"{}")["event_id"]
            key = (message.key or b"").decode()
            if event_id not in seen[key]:
                seen[key].append(event_id)
        for key, events in expected.items():
            assert seen[key] == events, (
                f"{topic.value}: events of {key} missing or out of order: outbox {events}, "
                f"topic {seen[key]}"
            )


async def _assert_no_dead_letters(stack: StackUnderTest) -> None:
    for topic in Topic:
        dead = await read_all(
            stack.config.kafka_bootstrap,
            dlq_topic(f"{stack.config.topic_prefix}{topic.value}"),
            timeout_ms=500,
        )
        assert dead == [], f"{len(dead)} dead letters on {topic.value}.dlq"


async def _connect(stack: StackUnderTest) -> asyncpg.Connection:
    return await asyncpg.connect(stack.admin_dsn(), timeout=10)
