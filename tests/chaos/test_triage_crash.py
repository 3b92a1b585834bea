"""Crash: kill -9 the triage process while complaints flow; nothing is lost or doubled."""

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from shared.events import Topic, dlq_topic
from tests.support.complaints import complaint_body, post_complaint
from tests.support.kafka import read_all
from tests.support.platform import Platform
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e, pytest.mark.chaos]

COMPLAINTS = 500
CONCURRENCY = 20
KILL_AFTER = 150
FLOW_DEADLINE_S = 240


async def count_where(admin_db: asyncpg.Connection, sql: str, ids: list[uuid.UUID]) -> int:
    return int(await admin_db.fetchval(sql, ids))


async def test_kill_9_triage_mid_flow_every_complaint_reaches_notification_exactly_once(
    platform: Platform, http: httpx.AsyncClient, admin_db: asyncpg.Connection
):
    posted: list[uuid.UUID] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(COMPLAINTS):
        queue.put_nowait(n)
    killed = asyncio.Event()
    triaged_at_kill: list[int] = []

    async def storefront() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = complaint_body(n, description=f"crash test complaint {n}: parcel crushed")
            response = await post_complaint(http, platform.url("intake"), body)
            assert response.status_code == 201, response.text
            posted.append(uuid.UUID(response.json()["complaint_id"]))
            if len(posted) >= KILL_AFTER and not killed.is_set():
                killed.set()
                platform.kill("triage")
                triaged_at_kill.append(
                    await count_where(
                        admin_db,
                        "SELECT count(*) FROM triage.triages WHERE complaint_id = ANY($1)",
                        list(posted),
                    )
                )

    await asyncio.gather(*(storefront() for _ in range(CONCURRENCY)))
    assert killed.is_set()
    assert triaged_at_kill[0] < len(posted), "the crash must hit complaints still in flight"
    await asyncio.to_thread(platform.restart, "triage")

    async def all_acknowledged() -> bool:
        done = await count_where(
            admin_db,
            "SELECT count(DISTINCT complaint_id) FROM notification.notifications "
            "WHERE kind = 'acknowledgement' AND complaint_id = ANY($1)",
            posted,
        )
        return done == COMPLAINTS

    await wait_until(
        all_acknowledged, timeout_s=FLOW_DEADLINE_S, interval_s=1, what="500 acknowledgements"
    )

    for table, column in (
        ("triage.triages", "complaint_id"),
        ("resolution.cases", "complaint_id"),
        ("notification.notifications", "complaint_id"),
    ):
        rows = await admin_db.fetch(
            f"SELECT {column}, count(*) AS n FROM {table} "
            f"WHERE {column} = ANY($1) GROUP BY {column}",
            posted,
        )
        assert len(rows) == COMPLAINTS, table
        assert all(row["n"] == 1 for row in rows), f"duplicate effect in {table}"
    emitted = await count_where(
        admin_db,
        "SELECT count(*) FROM notification.outbox WHERE event_type = 'acknowledgement.recorded' "
        "AND message_key = ANY($1::text[])",
        [str(c) for c in posted],
    )
    assert emitted == COMPLAINTS, "one acknowledgement.recorded event per complaint"
    config = platform.stack.config
    for topic in Topic:
        dead = await read_all(
            config.kafka_bootstrap, dlq_topic(f"{config.topic_prefix}{topic.value}")
        )
        keys = {str(c).encode() for c in posted}
        assert not [m for m in dead if m.key in keys], (
            f"crash-test complaints dead-lettered on {topic}"
        )
