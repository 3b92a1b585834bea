"""DLQ replay against the real broker: a replay is meant for the group that dead-lettered it."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer

from services.__main__ import REPO_ROOT
from shared.events import Topic, dlq_topic
from shared.messaging import create_producer
from shared.messaging.dlq import replay_dead_letters
from shared.messaging.headers import REPLAY_FOR_GROUP_HEADER, is_replay_for_other_group
from shared.messaging.kafka import delete_topics, ensure_topics
from tests.support.kafka import Message, read_all
from tests.support.stack import StackUnderTest

pytestmark = pytest.mark.stack

TOPIC = Topic.INTAKE_COMPLAINT.value


@dataclass
class Lane:
    """One test's own topic and dead-letter twin (through a prefix)."""

    bootstrap: str
    prefix: str
    producer: AIOKafkaProducer

    @property
    def topic(self) -> str:
        return f"{self.prefix}{TOPIC}"

    @property
    def dlq(self) -> str:
        return dlq_topic(self.topic)

    async def dead_letter(
        self, value: bytes, *, group: str | None, extra: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        """Writes a dead letter as the consumer wrapper does (original headers + dlq.*)."""
        headers = [
            ("event_type", b"probe.recorded"),
            ("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"),
            *extra,
            ("dlq.error", b"RuntimeError: handler refuses"),
            ("dlq.original_topic", self.topic.encode()),
            ("dlq.original_partition", b"0"),
            ("dlq.original_offset", b"7"),
            ("dlq.attempts", b"5"),
        ]
        if group is not None:
            headers += [("dlq.consumer", group.encode()), ("dlq.consumer_group", group.encode())]
        await self.producer.send_and_wait(
            self.dlq, value=value, key=b"complaint-1", headers=headers
        )

    async def replayed(self) -> list[Message]:
        return await read_all(self.bootstrap, self.topic, timeout_ms=500)


@pytest.fixture
async def lane(stack: StackUnderTest) -> AsyncIterator[Lane]:
    prefix = f"replay-{uuid.uuid4().hex[:8]}."
    bootstrap = stack.config.kafka_bootstrap
    topics = [f"{prefix}{TOPIC}", dlq_topic(f"{prefix}{TOPIC}")]
    await ensure_topics(bootstrap, topics, partitions=1)
    producer = create_producer(bootstrap, client_id="tests")
    await producer.start()
    yield Lane(bootstrap=bootstrap, prefix=prefix, producer=producer)
    await producer.stop()
    await delete_topics(bootstrap, topics)


def replayer() -> str:
    return f"replayer-{uuid.uuid4().hex[:6]}"


class TestReplayTargetsTheFailedGroup:
    async def test_a_replay_is_meant_only_for_the_group_that_dead_lettered_it(self, lane):
        await lane.dead_letter(b"payload-1", group="triage-service")
        progress = replayer()

        result = await replay_dead_letters(lane.bootstrap, lane.dlq, group_id=progress)

        assert (result.replayed, result.skipped, result.other_groups) == (1, 0, 0)
        [message] = await lane.replayed()
        assert (message.key, message.value) == (b"complaint-1", b"payload-1")
        assert message.header(REPLAY_FOR_GROUP_HEADER) == "triage-service"
        assert message.header("dlq.replay_count") == "1"
        assert message.header("event_type") == "probe.recorded", "original headers are kept"
        assert message.header("dlq.error") is None, "the dead-letter details are stripped"
        assert message.header("dlq.consumer_group") is None
        assert is_replay_for_other_group(message.headers, "notification-service")
        assert not is_replay_for_other_group(message.headers, "triage-service")

        again = await replay_dead_letters(lane.bootstrap, lane.dlq, group_id=progress)
        assert again.replayed == 0, "a replay run replays each dead letter once"
        assert len(await lane.replayed()) == 1

    async def test_a_replay_that_failed_again_is_counted_and_retargeted_once(self, lane):
        earlier_replay = (("dlq.replay_count", b"1"), (REPLAY_FOR_GROUP_HEADER, b"triage-service"))
        await lane.dead_letter(b"again", group="triage-service", extra=earlier_replay)

        await replay_dead_letters(lane.bootstrap, lane.dlq, group_id=replayer())

        [message] = await lane.replayed()
        assert message.header("dlq.replay_count") == "2"
        targets = [value for key, value in message.headers if key == REPLAY_FOR_GROUP_HEADER]
        assert targets == [b"triage-service"]

    async def test_nested_dead_letters_are_skipped(self, lane):
        await lane.producer.send_and_wait(
            lane.dlq,
            value=b"nested",
            headers=[("dlq.original_topic", lane.dlq.encode()), ("dlq.consumer_group", b"g")],
        )
        result = await replay_dead_letters(lane.bootstrap, lane.dlq, group_id=replayer())
        assert (result.replayed, result.skipped) == (0, 1)

    async def test_a_dead_letter_naming_no_group_is_replayed_for_every_group(self, lane):
        await lane.dead_letter(b"legacy", group=None)
        await replay_dead_letters(lane.bootstrap, lane.dlq, group_id=replayer())
        [message] = await lane.replayed()
        assert message.header(REPLAY_FOR_GROUP_HEADER) is None
        assert not is_replay_for_other_group(message.headers, "any-group")


class TestReplayForOneGroup:
    async def test_for_group_replays_only_that_groups_dead_letters_and_keeps_the_rest(self, lane):
        await lane.dead_letter(b"of-a", group="group-a")
        await lane.dead_letter(b"of-b", group="group-b")
        progress = replayer()

        for_b = await replay_dead_letters(
            lane.bootstrap, lane.dlq, group_id=progress, for_group="group-b"
        )

        assert (for_b.replayed, for_b.other_groups) == (1, 1)
        [message] = await lane.replayed()
        assert (message.value, message.header(REPLAY_FOR_GROUP_HEADER)) == (b"of-b", "group-b")
        again = await replay_dead_letters(
            lane.bootstrap, lane.dlq, group_id=progress, for_group="group-b"
        )
        assert again.replayed == 0
        # A's dead letters were not used up by B's run: its progress is its own.
        for_a = await replay_dead_letters(
            lane.bootstrap, lane.dlq, group_id=progress, for_group="group-a"
        )
        assert for_a.replayed == 1
        replayed = {m.value: m.header(REPLAY_FOR_GROUP_HEADER) for m in await lane.replayed()}
        assert replayed == {b"of-b": "group-b", b"of-a": "group-a"}

    async def test_the_command_line_replays_for_the_named_group_only(self, lane):
        await lane.dead_letter(b"of-a", group="group-a")
        await lane.dead_letter(b"of-b", group="group-b")
        env = {
            **os.environ,
            "COMPLAINTS_KAFKA_BOOTSTRAP_SERVERS": lane.bootstrap,
            "COMPLAINTS_TOPIC_PREFIX": lane.prefix,
        }
        command = [
            sys.executable,
            "-m",
            "services",
            "replay-dlq",
            dlq_topic(TOPIC),
            "--group",
            replayer(),
            "--for-group",
            "group-a",
        ]

        done = await asyncio.to_thread(
            subprocess.run,
            command,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

        assert done.returncode == 0, done.stderr
        assert "replayed 1," in done.stdout
        assert "left 1 of other groups" in done.stdout
        [message] = await lane.replayed()
        assert (message.value, message.header(REPLAY_FOR_GROUP_HEADER)) == (b"of-a", "group-a")


def test_messages_that_are_not_replays_are_for_every_group():
    assert not is_replay_for_other_group([("event_type", b"x")], "group-a")
    assert not is_replay_for_other_group(None, "group-a")
    assert not is_replay_for_other_group([(REPLAY_FOR_GROUP_HEADER, b"")], "group-a")
