"""Real local servers for the channel tests: an SMTP server (aiosmtpd) and an HTTP receiver
(a Starlette app under uvicorn), each on a free loopback port, recording what they received.
"""

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route


def free_port() -> int:
    """A loopback port nobody listens on (for a moment)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- SMTP --------------------------------------------------------------------------------

# The test SMTP server stands in for the customer's mail provider: its INFO lines name every
# sender and recipient, which the run's personal-data log scan rightly refuses to find.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class SmtpRecorder:
    """An aiosmtpd handler that keeps each envelope and can refuse or stall on demand."""

    envelopes: list[Envelope] = field(default_factory=list)
    refuse_recipient_with: str | None = None
    data_reply: str = "250 2.0.0 Ok: queued as 4F2A1B"
    stall_data_seconds: float = 0.0

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.refuse_recipient_with:
            return self.refuse_recipient_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        if self.stall_data_seconds:
            await asyncio.sleep(self.stall_data_seconds)
        return self.data_reply


@dataclass
class SmtpServerUnderTest:
    """The running server: where it listens and what it recorded."""

    host: str
    port: int
    recorder: SmtpRecorder


@pytest.fixture
def smtp_server() -> Iterator[SmtpServerUnderTest]:
    """aiosmtpd on its own thread and loop, fresh for each test."""
    recorder = SmtpRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServerUnderTest("127.0.0.1", port, recorder)
    finally:
        controller.stop()


# --- HTTP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """What the local HTTP server received, and how its routes behave."""

    base_url: str = ""
    requests: list[ReceivedRequest] = field(default_factory=list)
    slow_seconds: float = 2.0
    # The provider route deduplicates by Idempotency-Key, as the adapter's contract says.
    sent_by_key: dict[str, str] = field(default_factory=dict)
    # /down-then-up answers 503 this many times, then 204.
    failures_left: int = 0

    def reset(self) -> None:
        """Forgets what was received and restores the default behaviour."""
        self.requests.clear()
        self.sent_by_key.clear()
        self.slow_seconds = 2.0
        self.failures_left = 0

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def on(self, path: str) -> list[ReceivedRequest]:
        return [request for request in self.requests if request.path == path]


def _receiver_app(receiver: HttpReceiver) -> Starlette:
    async def record(request: Request) -> ReceivedRequest:
        received = ReceivedRequest(
            path=request.url.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await request.body(),
        )
        receiver.requests.append(received)
        return received

    async def provider(request: Request) -> Response:
        received = await record(request)
        key = received.headers["idempotency-key"]
        first_send = key not in receiver.sent_by_key
        if first_send:
            receiver.sent_by_key[key] = f"prov-{len(receiver.sent_by_key) + 1}"
        # Providers echo the number they sent to: the log must not keep it.
        body = {"id": receiver.sent_by_key[key], "to": received.json()["to"], "new": first_send}
        return JSONResponse(body)

    async def slow_provider(request: Request) -> Response:
        received = await record(request)
        key = received.headers["idempotency-key"]
        receiver.sent_by_key.setdefault(key, f"prov-{len(receiver.sent_by_key) + 1}")
        await asyncio.sleep(receiver.slow_seconds)
        return JSONResponse({"id": receiver.sent_by_key[key]})

    async def status(request: Request) -> Response:
        await record(request)
        code = int(request.path_params["code"])
        return PlainTextResponse(f"answer {code}", status_code=code)

    async def hook(request: Request) -> Response:
        await record(request)
        return PlainTextResponse("ok", headers={"x-request-id": "req-42"})

    async def slow(request: Request) -> Response:
        await record(request)
        await asyncio.sleep(receiver.slow_seconds)
        return PlainTextResponse("late")

    async def down_then_up(request: Request) -> Response:
        await record(request)
        if receiver.failures_left > 0:
            receiver.failures_left -= 1
            return PlainTextResponse("down for maintenance", status_code=503)
        return Response(status_code=204)

    async def redirect(request: Request) -> Response:
        await record(request)
        return RedirectResponse("/hook", status_code=307)

    return Starlette(
        routes=[
            Route("/provider", provider, methods=["POST"]),
            Route("/slow-provider", slow_provider, methods=["POST"]),
            Route("/status/{code}", status, methods=["POST"]),
            Route("/hook", hook, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
            Route("/down-then-up", down_then_up, methods=["POST"]),
            Route("/redirect", redirect, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
async def http_server() -> AsyncIterator[HttpReceiver]:
    """A real HTTP server on loopback (uvicorn in the session's loop), one per module."""
    receiver = HttpReceiver()
    port = free_port()
    config = uvicorn.Config(
        _receiver_app(receiver),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        assert not serving.done(), "the HTTP receiver stopped while starting"
        await asyncio.sleep(0.01)
    receiver.base_url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        server.should_exit = True
        # Requests left sleeping (the timeout tests) must not hold the shutdown.
        server.force_exit = True
        await serving


@pytest.fixture
def http_receiver(http_server: HttpReceiver) -> HttpReceiver:
    """The module's HTTP server, with nothing received yet."""
    http_server.reset()
    return http_server
