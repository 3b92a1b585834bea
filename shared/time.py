"""One clock for the whole platform: aware UTC, always."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Returns the current time as an aware UTC datetime."""
    return datetime.now(UTC)
