"""One clock for the whole platform: aware UTC, always."""

from datetime import datetime

from shared.clock import default_clock


def utcnow() -> datetime:
    """Returns the current time as an aware UTC datetime (from the process-wide clock)."""
    return default_clock().now()
