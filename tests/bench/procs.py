"""Processes the bench owns: the raw baseline endpoint; CPU time of any process from /proc."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from tests.bench import raw_intake

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (/proc/<pid>/stat utime + stime)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds of each named process."""
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def cpu_by_command(commands: frozenset[str]) -> dict[int, tuple[str, float]]:
    """CPU seconds of every process whose command is one of `commands`, by pid."""
    found: dict[int, tuple[str, float]] = {}
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:  # the process ended meanwhile
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        if command in commands:
            fields = stat[stat.rindex(")") + 2 :].split()
            found[int(stat_path.parent.name)] = (
                command,
                (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
            )
    return found


def cpu_delta_by_command(
    before: Mapping[int, tuple[str, float]], after: Mapping[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds spent between two `cpu_by_command` readings, per command.

    A process that ended in between is missed (Postgres backends are pooled and live long).
    """
    spent: dict[str, float] = {}
    for pid, (command, seconds) in after.items():
        earlier = before.get(pid)
        start = earlier[1] if earlier is not None and earlier[0] == command else 0.0
        spent[command] = spent.get(command, 0.0) + max(seconds - start, 0.0)
    return spent


@dataclass(frozen=True)
class RawEndpoint:
    """The running raw baseline."""

    base_url: str
    pid: int


async def _create_raw_schema(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(raw_intake.DDL)
    finally:
        await conn.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"raw endpoint exited:\n{log.read_text(errors='replace')}")
            try:
                response = client.get(f"{url}/healthz")
                if response.status_code == 200 and response.json().get("pid") == process.pid:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"raw endpoint not healthy after {timeout_s}s")


@contextmanager
def raw_endpoint(
    admin_dsn: str, *, port: int, pool_size: int, log_dir: Path
) -> Iterator[RawEndpoint]:
    """Builds schema bench_raw and runs the raw endpoint under uvicorn until the block ends."""
    asyncio.run(_create_raw_schema(admin_dsn))
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "raw_intake.log"
    env = {
        **os.environ,
        raw_intake.DSN_ENV: admin_dsn,
        raw_intake.POOL_ENV: str(pool_size),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.bench.raw_intake:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process, log, 60)
        yield RawEndpoint(base_url=base_url, pid=process.pid)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
