"""The process layer: the launcher and the dead-letter replay command."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from shared.events import Topic, dlq_topic
from shared.messaging import create_producer, ensure_topics
from shared.messaging.kafka import delete_topics
from tests.support.kafka import read_all
from tests.support.stack import REPO_ROOT, StackUnderTest

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

LAUNCHER_PORT_OFFSET = 30_000


def stack_env(stack: StackUnderTest, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "COMPLAINTS_PG_DB": stack.database,
        "COMPLAINTS_TOPIC_PREFIX": stack.config.topic_prefix,
        "COMPLAINTS_KAFKA_BOOTSTRAP_SERVERS": stack.config.kafka_bootstrap,
        **extra,
    }


def test_launcher_runs_named_services_and_stops_them_on_sigterm(
    stack: StackUnderTest, tmp_path: Path
):
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services",
            "up",
            "intake",
            "--no-init",
            "--quiet",
            "--log-dir",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        env=stack_env(stack, COMPLAINTS_PORT_OFFSET=str(LAUNCHER_PORT_OFFSET)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = launcher.stdout.readline() if launcher.stdout else ""
            output.append(line)
            if "all services ready" in line or (not line and launcher.poll() is not None):
                break
        assert "all services ready" in "".join(output), "".join(output)
        port = 8001 + LAUNCHER_PORT_OFFSET
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        assert (tmp_path / "intake.log").exists()
        assert not any(name in "".join(output) for name in ("triage", "resolution")), "only intake"

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(60) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz")
        leftover = subprocess.run(
            ["pgrep", "-f", f"--port {port}"], capture_output=True, text=True, check=False
        ).stdout.strip()
        assert not leftover, "no service process outlives the launcher"
    finally:
        if launcher.poll() is None:
            launcher.kill()


async def test_replay_command_republishes_dead_letters_to_their_topic(stack: StackUnderTest):
    prefix = f"replay-{uuid.uuid4().hex[:8]}."
    topic = f"{prefix}{Topic.TRIAGE_COMPLAINT.value}"
    bootstrap = stack.config.kafka_bootstrap
    await ensure_topics(bootstrap, [topic, dlq_topic(topic)], partitions=2)
    producer = create_producer(bootstrap, client_id="dlq-writer")
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(
                dlq_topic(topic),
                value=f"dead-{i}".encode(),
                key=b"k",
                headers=[
                    ("event_type", b"complaint.triaged"),
                    ("dlq.original_topic", topic.encode()),
                    ("dlq.error", b"RuntimeError: boom"),
                ],
            )
    finally:
        await producer.stop()
    env = stack_env(stack, COMPLAINTS_TOPIC_PREFIX=prefix)
    command = [
        sys.executable,
        "-m",
        "services",
        "replay-dlq",
        dlq_topic(Topic.TRIAGE_COMPLAINT.value),
    ]
    first = await asyncio.to_thread(
        subprocess.run, command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert "replayed 3" in first.stdout
    second = await asyncio.to_thread(
        subprocess.run, command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert "replayed 0" in second.stdout, "each dead letter is replayed once"

    replayed = await read_all(bootstrap, topic)
    assert sorted(m.value for m in replayed) == [b"dead-0", b"dead-1", b"dead-2"]
    for message in replayed:
        assert message.header("event_type") == "complaint.triaged"
        assert message.header("dlq.error") is None
        assert message.header("dlq.replay_count") == "1"
    await delete_topics(bootstrap, [topic, dlq_topic(topic)])
