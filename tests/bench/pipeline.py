"""What the databases and the broker say about a phase: acknowledgements, backlog, lag.

A phase's complaints are found by the prefix of their correlation id (the bench sets
X-Correlation-ID on every request). End-to-end latency is intake's `received_at` to the
acknowledgement notification becoming `recorded` (read with the admin connection; both
timestamps come from the same host clock).
"""

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.catalog import CATALOG
from shared.events.topics import qualified_topic
from tests.bench.bodies import COMPLAINTS_PATH
from tests.bench.stats import percentile
from tests.bench.vegeta import Attack

PHASE_COMPLAINTS = """
SELECT c.correlation_id, c.received_at, n.acknowledged_at
FROM intake.complaints c
LEFT JOIN (
    -- An acknowledgement may wait for the contact (status awaiting_contact) first; it is
    -- recorded when its status says so, at updated_at.
    SELECT complaint_id, greatest(recorded_at, updated_at) AS acknowledged_at
    FROM notification.notifications
    WHERE kind = 'acknowledgement' AND status = 'recorded'
) n ON n.complaint_id = c.id
WHERE c.correlation_id LIKE $1 || '%'
"""

BACKLOG = " UNION ALL ".join(
    f"SELECT '{entry.schema}' AS schema, count(*) AS n FROM {entry.schema}.outbox "
    "WHERE published_at IS NULL"
    for entry in CATALOG
)


@dataclass(frozen=True)
class PhaseComplaints:
    """A phase's stored complaints: when each was received and acknowledged."""

    received: dict[str, datetime]
    acknowledged: dict[str, datetime]

    def stored_numbers(self, prefix: str) -> set[int]:
        """Request numbers (the tail of the correlation id) that intake stored."""
        return {int(cid.removeprefix(prefix)) for cid in self.received}

    def e2e_ms(self) -> list[float]:
        """received -> acknowledged, per acknowledged complaint."""
        return [
            (self.acknowledged[cid] - self.received[cid]).total_seconds() * 1000
            for cid in self.acknowledged
        ]

    def ack_rate_per_s(self) -> float:
        """Acknowledgements per second over the span from the first to the last."""
        times = sorted(self.acknowledged.values())
        if len(times) < 2:
            return 0.0
        span = (times[-1] - times[0]).total_seconds()
        return (len(times) - 1) / span if span > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """Counts and e2e percentiles."""
        e2e = self.e2e_ms()
        return {
            "stored": len(self.received),
            "acknowledged": len(self.acknowledged),
            "e2e_p50_ms": percentile(e2e, 50) if e2e else None,
            "e2e_p90_ms": percentile(e2e, 90) if e2e else None,
            "e2e_p99_ms": percentile(e2e, 99) if e2e else None,
            "e2e_max_ms": max(e2e) if e2e else None,
            "ack_rate_per_s": round(self.ack_rate_per_s(), 1),
        }


async def phase_complaints(admin: asyncpg.Connection, prefix: str) -> PhaseComplaints:
    """Reads a phase's complaints and their acknowledgements."""
    rows = await admin.fetch(PHASE_COMPLAINTS, prefix)
    return PhaseComplaints(
        received={row["correlation_id"]: row["received_at"] for row in rows},
        acknowledged={
            row["correlation_id"]: row["acknowledged_at"]
            for row in rows
            if row["acknowledged_at"] is not None
        },
    )


async def wait_acknowledged(
    admin: asyncpg.Connection, prefix: str, expected: int, timeout_s: float
) -> PhaseComplaints:
    """Waits until `expected` complaints of the phase are acknowledged (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await phase_complaints(admin, prefix)
        if len(found.acknowledged) >= expected or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def post_with_retries(
    client: httpx.AsyncClient,
    url: str,
    *,
    body: str,
    headers: dict[str, str],
    attempts: int = 6,
) -> httpx.Response:
    """POSTs an idempotent request (it carries an Idempotency-Key), retrying what may be
    transient: a reused keep-alive connection the server closed (ReadError,
    RemoteProtocolError), timeouts, refused connections, 5xx."""
    delay = 0.1
    for attempt in range(1, attempts + 1):
        try:
            response = await client.post(url, content=body.encode(), headers=headers)
        except httpx.TransportError:
            if attempt == attempts:
                raise
        else:
            if response.status_code < 500 or attempt == attempts:
                return response
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


async def storefront_retry(
    admin: asyncpg.Connection, base_url: str, attack: Attack, sent: int
) -> dict[str, int]:
    """Re-posts, with the same Idempotency-Key, every sent request intake did not store.

    vegeta never retries; a storefront would. A request that failed on the wire but was
    stored is found in the database and left alone.
    """
    prefix = f"{attack.phase}.{attack.token}."
    stored = (await phase_complaints(admin, prefix)).stored_numbers(prefix)
    missing = sorted(set(range(sent)) - stored)
    outcomes = {"missing": len(missing), "retried_ok": 0, "retried_failed": 0}
    if not missing:
        return outcomes
    async with httpx.AsyncClient(timeout=30) as client:
        for n in missing:
            try:
                response = await post_with_retries(
                    client,
                    f"{base_url}{COMPLAINTS_PATH}",
                    body=attack.body(n),
                    headers=attack.headers(n),
                )
                ok = response.status_code in (200, 201)
            except httpx.HTTPError:
                ok = False
            outcomes["retried_ok" if ok else "retried_failed"] += 1
    return outcomes


def consumer_groups(group_suffix: str) -> dict[str, list[str]]:
    """Each consuming service's group id and the (unprefixed) topics it reads."""
    return {
        f"{entry.name}-service{group_suffix}": [topic.value for topic in entry.topics_in]
        for entry in CATALOG
        if entry.topics_in
    }


class Backlog:
    """Outbox rows not yet published (all four schemas) and consumer lag (all groups)."""

    def __init__(
        self, admin: asyncpg.Connection, bootstrap: str, topic_prefix: str, group_suffix: str
    ) -> None:
        self.admin = admin
        self.bootstrap = bootstrap
        self.topic_prefix = topic_prefix
        self.groups = consumer_groups(group_suffix)
        self.kafka_admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        # Only asks for end offsets; a throwaway group that never commits.
        self.reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"bench-lag-{uuid.uuid4().hex[:8]}",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        self.partitions: dict[str, list[TopicPartition]] = {}

    async def __aenter__(self) -> "Backlog":
        await self.kafka_admin.start()
        await self.reader.start()
        cluster = await self.reader._client.fetch_all_metadata()
        for topics in self.groups.values():
            for topic in topics:
                name = qualified_topic(topic, self.topic_prefix)
                self.partitions[name] = [
                    TopicPartition(name, p)
                    for p in sorted(cluster.partitions_for_topic(name) or ())
                ]
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.reader.stop()
        await self.kafka_admin.close()

    async def outbox(self) -> dict[str, int]:
        """Unpublished outbox rows per schema."""
        return {row["schema"]: int(row["n"]) for row in await self.admin.fetch(BACKLOG)}

    async def lag(self) -> dict[str, int]:
        """Messages not yet committed by each group, summed over its partitions."""
        all_partitions = [tp for tps in self.partitions.values() for tp in tps]
        ends = await self.reader.end_offsets(all_partitions)
        lag: dict[str, int] = {}
        for group, topics in self.groups.items():
            tps = [
                tp
                for topic in topics
                for tp in self.partitions[qualified_topic(topic, self.topic_prefix)]
            ]
            committed = await self.kafka_admin.list_consumer_group_offsets(group, partitions=tps)
            lag[group] = sum(
                max(ends[tp] - max(committed[tp].offset, 0) if tp in committed else ends[tp], 0)
                for tp in tps
            )
        return lag

    async def snapshot(self) -> dict[str, dict[str, int]]:
        """Both, at one moment."""
        outbox, lag = await asyncio.gather(self.outbox(), self.lag())
        return {"outbox_backlog": outbox, "consumer_lag": lag}

    async def time_to_zero(self, timeout_s: float, poll_s: float = 0.1) -> dict[str, Any]:
        """Seconds from now until outbox backlog and consumer lag are both zero everywhere."""
        started = time.monotonic()
        first = await self.snapshot()
        last = first
        while True:
            if _all_zero(last):
                return {
                    "seconds": round(time.monotonic() - started, 2),
                    "drained": True,
                    "at_load_stop": first,
                }
            if time.monotonic() - started > timeout_s:
                return {
                    "seconds": None,
                    "drained": False,
                    "at_load_stop": first,
                    "at_timeout": last,
                }
            await asyncio.sleep(poll_s)
            last = await self.snapshot()


def _all_zero(snapshot: dict[str, dict[str, int]]) -> bool:
    return all(value == 0 for part in snapshot.values() for value in part.values())
