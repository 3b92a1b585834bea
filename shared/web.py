"""HTTP plumbing every service shares: commit edge, correlation ids, health, metrics."""

import logging
import os
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import ServiceUnavailableError
from shared.events.envelope import CORRELATION_ID_PATTERN
from shared.messaging.headers import child_traceparent
from shared.observability import log_context, new_correlation_id

logger = logging.getLogger("http")

CORRELATION_HEADER = "x-correlation-id"

HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # The request edge owns the transaction: commit when the endpoint returned, roll
    # back when it raised. scope="function" runs this before the response is built,
    # so a failed commit becomes an error response, never a success that was not stored.
    async with request.app.state.runtime.sessionmaker() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


class CorrelationMiddleware:
    """Takes or makes a correlation id per request and binds it to every log line."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode(errors="replace") for k, v in scope["headers"]}
        correlation_id = headers.get(CORRELATION_HEADER, "")
        if not _valid_correlation_id(correlation_id):
            correlation_id = new_correlation_id()
        status_holder: dict[str, int] = {"status": 500}

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (CORRELATION_HEADER.encode(), correlation_id.encode()),
                ]
            await send(message)

        started = time.perf_counter()
        with log_context(
            correlation_id=correlation_id,
            traceparent=child_traceparent(headers.get("traceparent")),
        ):
            try:
                await self.app(scope, receive, send_with_header)
            finally:
                elapsed = time.perf_counter() - started
                route = scope.get("route")
                route_path = getattr(route, "path", "unmatched")
                status = status_holder["status"]
                HTTP_LATENCY.labels(scope["method"], route_path, str(status)).observe(elapsed)
                if route_path not in ("/healthz", "/readyz", "/metrics"):
                    extra: dict[str, object] = {"duration_ms": round(elapsed * 1000, 2)}
                    path_complaint = scope.get("path_params", {}).get("complaint_id")
                    if path_complaint is not None:
                        extra["complaint_id"] = str(path_complaint)
                    # Who called (set by shared.auth.allow): `storefront:sf-1`, `agent:alice`.
                    principal = scope.get("state", {}).get("principal")
                    if principal is not None:
                        extra["caller"] = principal.id
                    logger.info("%s %s -> %d", scope["method"], route_path, status, extra=extra)


def _valid_correlation_id(value: str) -> bool:
    return bool(value) and re.fullmatch(CORRELATION_ID_PATTERN, value) is not None


def operations_router(metrics_guard: Sequence[Any] = ()) -> APIRouter:
    """/healthz (alive), /readyz (database and Kafka reachable), /metrics (Prometheus).

    `metrics_guard`: dependencies of /metrics (an admin check when operations are protected).
    """
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz(request: Request) -> dict[str, object]:
        # The pid lets a supervisor tell its own process from a stale one on the same port.
        runtime = request.app.state.runtime
        if runtime.fatal:
            # A background task kept dying: restart the process (Kubernetes liveness probe).
            raise ServiceUnavailableError(f"not alive: {runtime.fatal}", tasks=runtime.task_states)
        return {
            "status": "ok",
            "service": runtime.spec.name,
            "pid": os.getpid(),
            "tasks": runtime.task_states,
        }

    @router.get("/readyz")
    async def readyz(request: Request) -> dict[str, Any]:
        checks = await request.app.state.runtime.check_ready()
        if any(value != "ok" for value in checks.values()):
            raise ServiceUnavailableError(
                "not ready: "
                + ", ".join(f"{name}={value}" for name, value in checks.items() if value != "ok"),
                checks=checks,
            )
        return {"status": "ready", "checks": checks}

    @router.get("/metrics", dependencies=list(metrics_guard))
    async def metrics(request: Request) -> Response:
        await request.app.state.runtime.refresh_gauges()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
