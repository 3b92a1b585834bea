"""A Postgres cluster and a Kafka broker of the test run's own, for tests that break them.

The faults tier stops the broker, restarts Postgres and starves a role of connections. On
the shared local stack that would break every other test run (and a `make up`) on the
machine, so it gets infrastructure nobody else uses, started by the project's own scripts.
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from services.environment import StackConfig
from tests.support.stack import LOCAL, REPO_ROOT

ADMIN_USER = "complaints_admin"
ADMIN_PASSWORD = "complaints_admin"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return Path(initdb).parent


def _version_key(path: str) -> int:
    part = path.split("/")[4]
    return int(part) if part.isdigit() else 0


@dataclass
class PrivatePostgres:
    """One throwaway cluster in a temporary directory, on its own port."""

    directory: Path
    port: int

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(_pg_bin() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            # The server refuses to run as root.
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        """Creates the cluster (trust auth on loopback only) and starts it."""
        self.directory.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.directory / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.start()
        self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f"CREATE ROLE {ADMIN_USER} LOGIN SUPERUSER PASSWORD '{ADMIN_PASSWORD}'",
        )

    def start(self) -> None:
        """Starts the server and waits until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c max_connections=200 -c fsync=off -c synchronous_commit=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-o",
            options,
            "-l",
            str(self.directory / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def restart(self) -> None:
        """A fast restart: every connection is cut, the server is back a moment later."""
        # Not `pg_ctl restart`: without -l the new server would write into our stdout pipe.
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")
        self.start()

    def destroy(self) -> None:
        """Stops the server at once and removes its files."""
        self._run(
            "pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "stop", check=False
        )
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class PrivateKafka:
    """A broker of its own, run by deploy/local/kafka.sh with its own run directory."""

    run_dir: Path
    port: int
    controller_port: int

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "COMPLAINTS_RUN_DIR": str(self.run_dir),
            "COMPLAINTS_KAFKA_PORT": str(self.port),
            "COMPLAINTS_KAFKA_CONTROLLER_PORT": str(self.controller_port),
        }

    def up(self) -> None:
        """Starts the broker (its data survives a clean down + up)."""
        subprocess.run(
            ["bash", str(LOCAL / "kafka.sh"), "up"],
            env=self._env(),
            check=True,
            capture_output=True,
            text=True,
            timeout=240,
        )

    def down(self) -> None:
        """Stops the broker cleanly, as an operator would."""
        subprocess.run(
            ["bash", str(LOCAL / "kafka.sh"), "down"],
            env=self._env(),
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def destroy(self) -> None:
        """Stops it and removes its data."""
        with contextlib.suppress(subprocess.SubprocessError):
            self.down()
        shutil.rmtree(self.run_dir, ignore_errors=True)


@dataclass
class PrivateInfrastructure:
    """The private cluster and broker, and the stack config that points at them."""

    postgres: PrivatePostgres
    kafka: PrivateKafka
    config: StackConfig


@contextmanager
def private_infrastructure(label: str) -> Iterator[PrivateInfrastructure]:
    """Starts a private Postgres and Kafka, yields them, and removes both afterwards."""
    run_id = uuid.uuid4().hex[:8]
    postgres = PrivatePostgres(Path(f"/tmp/complaints-{label}-{run_id}/pg"), free_port())
    kafka = PrivateKafka(REPO_ROOT / ".run" / f"{label}-{run_id}", free_port(), free_port())
    try:
        postgres.init()
        kafka.up()
        config = replace(
            StackConfig.from_env(),
            pg_host="127.0.0.1",
            pg_port=postgres.port,
            admin_user=ADMIN_USER,
            admin_password=ADMIN_PASSWORD,
            kafka_bootstrap=f"127.0.0.1:{kafka.port}",
        )
        yield PrivateInfrastructure(postgres=postgres, kafka=kafka, config=config)
    finally:
        kafka.destroy()
        postgres.destroy()
        shutil.rmtree(postgres.directory.parent, ignore_errors=True)


def wait_for_port(port: int, timeout_s: float = 60) -> None:
    """Blocks until something accepts connections on the loopback port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")
