"""Topic administration against the real broker: layout, retention, drift and the start check."""

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy.ext.asyncio import AsyncSession

from services.__main__ import REPO_ROOT
from shared.events import EventEnvelope, Topic, dlq_topic
from shared.events.topics import all_topic_names
from shared.messaging.kafka import (
    HOUR_MS,
    PartitionMismatchError,
    TopicAdminError,
    check_inbox_outlives_topics,
    delete_topics,
    ensure_topics,
    topic_configs,
    topic_retention_ms,
)
from shared.runtime import ServiceRuntime, ServiceSpec
from shared.settings import ServiceSettings
from tests.support.messaging import messaging_schema
from tests.support.stack import StackUnderTest

pytestmark = pytest.mark.stack

DAY_MS = 24 * HOUR_MS


@pytest.fixture
async def names(stack: StackUnderTest) -> AsyncIterator[Callable[[str], str]]:
    """Makes topic names under a unique prefix; deletes every one of them afterwards."""
    prefix = f"topics-{uuid.uuid4().hex[:8]}."
    made: list[str] = []

    def name(suffix: str) -> str:
        made.append(f"{prefix}{suffix}")
        return made[-1]

    yield name
    await delete_topics(stack.config.kafka_bootstrap, made)


async def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        described = await admin.describe_topics([t for t in topics if t in existing])
    finally:
        await admin.close()
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


async def create_raw(bootstrap: str, name: str, partitions: int, **configs: str) -> None:
    """Creates a topic the way an older init (or a person) did, bypassing ensure_topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
        assert all(code == 0 for _, code, *_ in response.topic_errors), response.topic_errors
    finally:
        await admin.close()


class TestEnsureTopics:
    async def test_creates_missing_topics_with_partitions_replication_and_retention(
        self, stack, names
    ):
        bootstrap = stack.config.kafka_bootstrap
        main = names("complaint.v1")
        dlq = dlq_topic(main)
        outcome = await ensure_topics(
            bootstrap,
            [main, dlq],
            partitions=3,
            retention_ms=2 * DAY_MS,
            dlq_retention_ms=10 * DAY_MS,
        )
        assert outcome[main].startswith("created (3 partitions, replication factor 1")
        assert await partition_counts(bootstrap, [main, dlq]) == {main: 3, dlq: 3}
        configs = await topic_configs(bootstrap, [main, dlq])
        assert configs[main]["retention.ms"] == str(2 * DAY_MS)
        assert configs[dlq]["retention.ms"] == str(10 * DAY_MS), "dead letters are kept longer"
        for topic in (main, dlq):
            assert configs[topic]["min.insync.replicas"] == "1"
            assert configs[topic]["cleanup.policy"] == "delete"
            assert configs[topic]["segment.ms"] == str(DAY_MS)
        assert await topic_retention_ms(bootstrap, [main, dlq]) == {
            main: 2 * DAY_MS,
            dlq: 10 * DAY_MS,
        }

    async def test_a_second_run_with_the_same_layout_changes_nothing(self, stack, names):
        bootstrap, topic = stack.config.kafka_bootstrap, names("steady.v1")
        await ensure_topics(bootstrap, [topic], partitions=2)
        again = await ensure_topics(bootstrap, [topic], partitions=2)
        assert again == {topic: "exists (2 partitions, replication factor 1)"}

    async def test_a_partition_mismatch_raises_and_changes_nothing(self, stack, names):
        bootstrap = stack.config.kafka_bootstrap
        fewer, more, missing = names("fewer.v1"), names("more.v1"), names("missing.v1")
        await ensure_topics(bootstrap, [fewer], partitions=2, retention_ms=DAY_MS)
        await ensure_topics(bootstrap, [more], partitions=5, retention_ms=DAY_MS)

        with pytest.raises(PartitionMismatchError) as raised:
            await ensure_topics(
                bootstrap, [fewer, more, missing], partitions=3, retention_ms=2 * DAY_MS
            )

        assert raised.value.mismatches == {fewer: (2, 3), more: (5, 3)}
        assert f"{fewer} has 2 partitions, configured 3" in str(raised.value)
        assert f"{more} has 5 partitions, configured 3" in str(raised.value)
        assert await partition_counts(bootstrap, [fewer, more, missing]) == {fewer: 2, more: 5}
        retention = await topic_retention_ms(bootstrap, [fewer, more])
        assert retention == {fewer: DAY_MS, more: DAY_MS}, "no config was touched either"

    async def test_force_partitions_grows_fewer_and_keeps_more(self, stack, names):
        bootstrap = stack.config.kafka_bootstrap
        fewer, more = names("fewer.v1"), names("more.v1")
        await ensure_topics(bootstrap, [fewer], partitions=2)
        await ensure_topics(bootstrap, [more], partitions=5)

        outcome = await ensure_topics(bootstrap, [fewer, more], partitions=3, force_partitions=True)

        assert "grown 2->3 partitions (forced)" in outcome[fewer]
        assert "kept 5 partitions (configured 3; cannot shrink)" in outcome[more]
        assert await partition_counts(bootstrap, [fewer, more]) == {fewer: 3, more: 5}

    async def test_config_drift_is_corrected_keeping_unmanaged_overrides(self, stack, names):
        bootstrap, topic = stack.config.kafka_bootstrap, names("drifted.v1")
        # As made before retention was managed, with a setting someone added by hand.
        await create_raw(
            bootstrap, topic, 2, **{"retention.ms": str(DAY_MS), "max.message.bytes": "2000000"}
        )

        outcome = await ensure_topics(bootstrap, [topic], partitions=2, retention_ms=3 * DAY_MS)

        assert f"retention.ms={3 * DAY_MS} (was {DAY_MS})" in outcome[topic]
        assert "min.insync.replicas=1 (was broker default 1)" in outcome[topic]
        configs = await topic_configs(bootstrap, [topic])
        assert configs[topic]["retention.ms"] == str(3 * DAY_MS)
        assert configs[topic]["min.insync.replicas"] == "1"
        assert configs[topic]["max.message.bytes"] == "2000000", "AlterConfigs replaces all"
        steady = await ensure_topics(bootstrap, [topic], partitions=2, retention_ms=3 * DAY_MS)
        assert "set" not in steady[topic], "drift is corrected once"

    async def test_a_replication_factor_beyond_the_brokers_fails_clearly(self, stack, names):
        bootstrap, topic = stack.config.kafka_bootstrap, names("replicated.v1")
        with pytest.raises(TopicAdminError, match="replication factor 3 needs at least 3 brokers"):
            await ensure_topics(
                bootstrap, [topic], partitions=1, replication_factor=3, min_insync_replicas=2
            )
        assert await partition_counts(bootstrap, [topic]) == {}, "nothing was created"

    async def test_min_insync_replicas_above_the_replication_factor_is_refused(self, stack):
        with pytest.raises(ValueError, match=r"min\.insync\.replicas"):
            await ensure_topics(
                stack.config.kafka_bootstrap, ["never-made"], partitions=1, min_insync_replicas=2
            )


async def ignore(session: AsyncSession, event: EventEnvelope[Any]) -> None:
    """A handler that is never called: the runtime refuses before consuming."""


class TestInboxRetentionCheck:
    async def test_runtime_refuses_to_start_when_its_inbox_forgets_before_its_topics(
        self, stack, names
    ):
        topic = names(Topic.INTAKE_COMPLAINT.value)
        prefix = topic.removesuffix(Topic.INTAKE_COMPLAINT.value)
        await ensure_topics(
            stack.config.kafka_bootstrap, [topic], partitions=1, retention_ms=30 * DAY_MS
        )
        async with messaging_schema(stack.admin_sqlalchemy_url()) as db:
            spec = ServiceSpec(
                name="probe",
                schema=db.schema,
                outbox=db.outbox,
                inbox=db.inbox,
                subscriptions={Topic.INTAKE_COMPLAINT: {"probe.recorded": ignore}},
            )
            settings = ServiceSettings(
                database_url=stack.admin_sqlalchemy_url(),
                kafka_bootstrap_servers=stack.config.kafka_bootstrap,
                topic_prefix=prefix,
                inbox_retention_hours=14 * 24,
            )
            runtime = ServiceRuntime(spec, settings)
            try:
                with pytest.raises(RuntimeError, match=r"inbox retention \(336 h\) is shorter"):
                    await runtime.start()
                assert runtime.consumer is None, "it never consumed"
            finally:
                await runtime.stop()

    async def test_passes_when_the_inbox_outlives_retention_plus_one_segment(self, stack, names):
        topic = names("short.v1")
        await ensure_topics(
            stack.config.kafka_bootstrap, [topic], partitions=1, retention_ms=DAY_MS
        )
        # One day of retention plus one day of segment: a message can stay two days.
        await check_inbox_outlives_topics(
            stack.config.kafka_bootstrap, [topic], inbox_retention_hours=48
        )
        with pytest.raises(RuntimeError, match=re.escape(f"{topic} can keep a message 48 h")):
            await check_inbox_outlives_topics(
                stack.config.kafka_bootstrap, [topic], inbox_retention_hours=47
            )

    async def test_a_topic_kept_forever_is_always_refused(self, stack, names):
        topic = names("forever.v1")
        await ensure_topics(stack.config.kafka_bootstrap, [topic], partitions=1, retention_ms=-1)
        with pytest.raises(RuntimeError, match="keeps messages forever"):
            await check_inbox_outlives_topics(
                stack.config.kafka_bootstrap, [topic], inbox_retention_hours=100 * 365 * 24
            )

    async def test_a_missing_topic_is_reported_with_the_command_that_creates_it(self, stack, names):
        with pytest.raises(TopicAdminError, match="python -m services topics"):
            await check_inbox_outlives_topics(
                stack.config.kafka_bootstrap, [names("absent.v1")], inbox_retention_hours=48
            )


def run_topics_command(
    stack: StackUnderTest, prefix: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COMPLAINTS_KAFKA_BOOTSTRAP_SERVERS": stack.config.kafka_bootstrap,
        "COMPLAINTS_TOPIC_PREFIX": prefix,
        "COMPLAINTS_TOPIC_PARTITIONS": "3",
        "COMPLAINTS_TOPIC_REPLICATION_FACTOR": "1",
        "COMPLAINTS_TOPIC_MIN_INSYNC_REPLICAS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "services", "topics", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestTopicsCommand:
    async def test_exits_non_zero_and_changes_nothing_on_a_partition_mismatch(self, stack):
        bootstrap = stack.config.kafka_bootstrap
        prefix = f"cli-{uuid.uuid4().hex[:8]}."
        every = all_topic_names(prefix)
        intake = f"{prefix}{Topic.INTAKE_COMPLAINT.value}"
        try:
            await create_raw(bootstrap, intake, 2)

            refused = await asyncio.to_thread(run_topics_command, stack, prefix)

            assert refused.returncode == 2, refused.stderr
            assert f"topic {intake}: has 2 partitions, configured 3" in refused.stderr
            assert "--force-partitions" in refused.stderr
            assert await partition_counts(bootstrap, every) == {intake: 2}

            forced = await asyncio.to_thread(
                run_topics_command, stack, prefix, "--force-partitions"
            )

            assert forced.returncode == 0, forced.stderr
            assert f"topic {intake}: exists (2 partitions" in forced.stdout
            assert "grown 2->3 partitions (forced)" in forced.stdout
            assert await partition_counts(bootstrap, every) == {name: 3 for name in every}
            retention = await topic_retention_ms(bootstrap, every)
            assert retention[intake] == 7 * DAY_MS, "the old topic got its retention too"
            assert retention[dlq_topic(intake)] == 30 * DAY_MS
        finally:
            await delete_topics(bootstrap, every)
