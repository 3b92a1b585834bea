"""The uvicorn HTTP protocol the services run: httptools plus a deadline for request headers.

uvicorn closes idle keep-alive connections (`--timeout-keep-alive`) but waits forever for a
client that opens a connection and never finishes its request line and headers (slowloris).
This protocol closes such a connection after `COMPLAINTS_HTTP_HEADER_TIMEOUT_S` seconds
(default 10). Select it with `--http shared.http_server:HeaderTimeoutProtocol`.
"""

import asyncio
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_ENV = "COMPLAINTS_HTTP_HEADER_TIMEOUT_S"


def header_timeout_seconds() -> float:
    """The configured deadline for a request's headers."""
    return float(os.environ.get(HEADER_TIMEOUT_ENV, "10"))


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """Closes a connection whose next request does not finish its headers in time."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Starts the header deadline with the connection."""
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        """Feeds the parser; a request whose headers are complete stops the deadline."""
        super().data_received(data)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            self._cancel_header_timer()
        else:
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forgets the deadline with the connection."""
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and not self.transport.is_closing():
            self._header_timer = self.loop.call_later(
                header_timeout_seconds(), self._header_deadline_passed
            )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline_passed(self) -> None:
        self._header_timer = None
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self.transport.close()
