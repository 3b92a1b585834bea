"""The process layer: the launcher and the dead-letter replay command."""

import asyncio
import os
import signal
import socket
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


SUPERVISOR_SCRIPT = """
import sys, time
from dataclasses import replace
from pathlib import Path
from services.catalog import BY_NAME
from services.environment import StackConfig
from services.launcher import ServiceProcess
config = replace(StackConfig.from_env(), port_offset=int(sys.argv[1]))
service = ServiceProcess(BY_NAME["intake"], config, log_dir=Path(sys.argv[2]))
service.start()
service.wait_ready(60)
print(service.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state  # exited, waiting to be reaped by init


def test_a_service_shuts_down_when_its_supervisor_is_killed(stack: StackUnderTest, tmp_path: Path):
    offset = LAUNCHER_PORT_OFFSET + 10_000
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR_SCRIPT, str(offset), str(tmp_path)],
        cwd=REPO_ROOT,
        env=stack_env(stack),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = supervisor.stdout.readline() if supervisor.stdout else ""
        assert line.strip().isdigit(), f"supervisor did not start the service: {line!r}"
        service_pid = int(line)
        supervisor.kill()  # no chance to clean up
        supervisor.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _gone(service_pid):
            time.sleep(0.2)
        assert _gone(service_pid), "the orphaned service kept running"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{8001 + offset}/healthz")
    finally:
        if supervisor.poll() is None:
            supervisor.kill()


def test_starting_on_a_taken_port_is_a_clear_error(stack: StackUnderTest, tmp_path: Path):
    from dataclasses import replace

    from services.catalog import BY_NAME
    from services.launcher import ServiceProcess

    config = replace(stack.config, port_offset=LAUNCHER_PORT_OFFSET + 20_000)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 8001 + config.port_offset))
    blocker.listen()
    try:
        with pytest.raises(RuntimeError, match="already in use"):
            ServiceProcess(BY_NAME["intake"], config, log_dir=tmp_path).start()
    finally:
        blocker.close()


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
