"""Structured JSON logs that carry complaint_id and correlation_id across every hop."""

import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

_complaint_id: ContextVar[str | None] = ContextVar("complaint_id", default=None)
_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)

# Record attributes that are not "extra" fields (uvicorn adds an ANSI-coloured copy too).
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


def current_correlation_id() -> str | None:
    """The correlation id of the request or event being handled."""
    return _correlation_id.get()


def current_traceparent() -> str | None:
    """The W3C traceparent of the request or event being handled."""
    return _traceparent.get()


def new_correlation_id() -> str:
    """A fresh correlation id for work that starts here."""
    return str(uuid.uuid4())


@contextmanager
def log_context(
    *,
    complaint_id: object | None = None,
    correlation_id: str | None = None,
    traceparent: str | None = None,
) -> Iterator[None]:
    """Binds complaint and correlation ids to every log line in the block."""
    tokens = []
    if complaint_id is not None:
        tokens.append((_complaint_id, _complaint_id.set(str(complaint_id))))
    if correlation_id is not None:
        tokens.append((_correlation_id, _correlation_id.set(correlation_id)))
    if traceparent is not None:
        tokens.append((_traceparent, _traceparent.set(traceparent)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_complaint(complaint_id: object) -> None:
    """Binds the complaint id for the rest of the current task (e.g. once a POST creates it)."""
    _complaint_id.set(str(complaint_id))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extras passed with `extra=` become fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Renders the record as a JSON line."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        complaint_id = _complaint_id.get()
        if complaint_id:
            entry["complaint_id"] = complaint_id
        correlation_id = _correlation_id.get()
        if correlation_id:
            entry["correlation_id"] = correlation_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        # orjson: a log line per request and per event is on the hot path of every service.
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, *, level: str = "INFO", json_lines: bool = True) -> None:
    """Routes all logging (uvicorn's too) to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    if json_lines:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers[:] = []
        uv_logger.propagate = True
    # The correlation middleware logs each request with its ids; uvicorn's line would repeat it.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    # aiokafka is chatty at INFO about group joins; keep warnings.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
