"""Runs services as separate processes: start, wait until ready, stop cleanly, kill on purpose."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx

from services.catalog import ServiceEntry
from services.environment import StackConfig
from shared.runtime import SUPERVISOR_PID_ENV


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Connection hygiene (same flags in deploy/): idle keep-alive connections close after 5 s, at
# most 1000 connections and requests at once per process (then 503), request heads over 64 KiB
# refused should the h11 parser be selected, and a connection must finish its request headers within
# COMPLAINTS_HTTP_HEADER_TIMEOUT_S (shared.http_server, default 10 s).
UVICORN_LIMITS = (
    "--http",
    "shared.http_server:HeaderTimeoutProtocol",
    "--timeout-keep-alive",
    "5",
    "--limit-concurrency",
    "1000",
    "--h11-max-incomplete-event-size",
    "65536",
)


class ServiceProcess:
    """One service under uvicorn in its own process, its output teed to a log file."""

    def __init__(
        self,
        entry: ServiceEntry,
        config: StackConfig,
        *,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.entry = entry
        self.config = config
        self.port = config.service_port(entry)
        self.log_path = log_dir / f"{entry.name}.log"
        self.extra_env = extra_env or {}
        self.echo = echo
        self.process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def base_url(self) -> str:
        """Where the service answers HTTP."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Starts the process (does not wait for readiness); refuses a port already taken."""
        if not _port_free(self.port):
            raise RuntimeError(
                f"port {self.port} for {self.entry.name} is already in use by another process"
            )
        env = {
            **os.environ,
            **self.config.service_env(self.entry),
            **self.extra_env,
            SUPERVISOR_PID_ENV: str(os.getpid()),
        }
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            self.entry.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "20",
            *UVICORN_LIMITS,
        ]
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal reaches the launcher only
        )
        self._reader = threading.Thread(
            target=self._tee, args=(self.process.stdout,), daemon=True, name=self.entry.name
        )
        self._reader.start()

    def _tee(self, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        with self.log_path.open("ab") as log:
            for line in iter(stream.readline, b""):
                log.write(line)
                log.flush()
                if self.echo is not None:
                    self.echo(f"[{self.entry.name}] {line.decode(errors='replace').rstrip()}")

    @property
    def pid(self) -> int | None:
        """The process id, while running."""
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Waits until /readyz answers 200; raises with the log tail otherwise."""
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise RuntimeError(f"{self.entry.name} exited:\n{self.log_tail()}")
                try:
                    health = client.get(f"{self.base_url}/healthz")
                    if health.status_code != 200 or health.json().get("pid") != self.pid:
                        last = f"another process answers on port {self.port}: {health.text}"
                        time.sleep(0.2)
                        continue
                    response = client.get(f"{self.base_url}/readyz")
                    if response.status_code == 200:
                        return
                    last = response.text
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.2)
        raise TimeoutError(
            f"{self.entry.name} not ready after {timeout_s}s ({last}):\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (graceful: finish in-flight work), then SIGKILL after the timeout."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._join_reader()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a crash looks like."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._join_reader()

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(5)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the service wrote."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def run_foreground(
    processes: list[ServiceProcess], *, ready_timeout_s: float = 90.0, restart: bool = True
) -> int:
    """Starts services, says where they are, restarts crashed ones, stops all on SIGINT/SIGTERM."""
    stopping = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        print(f"received {signal.Signals(signum).name}; stopping services", flush=True)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    for proc in processes:
        proc.start()
    try:
        for proc in processes:
            proc.wait_ready(ready_timeout_s)
            print(
                f"{proc.entry.name:<13} ready at {proc.base_url}  (log {proc.log_path})", flush=True
            )
        print("all services ready", flush=True)
        while not stopping.wait(1.0):
            for proc in processes:
                if not proc.alive() and restart:
                    print(f"{proc.entry.name} exited unexpectedly; restarting", flush=True)
                    proc.start()
    except (RuntimeError, TimeoutError) as exc:
        print(f"startup failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for proc in processes:
            proc.stop()
        print("all services stopped", flush=True)
    return 0
