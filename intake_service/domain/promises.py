"""The first-response promise a customer is given with their receipt (响应时效).

Online chat is answered within a minute, the hotline within 30 seconds, app and web forms
within 24 hours. Channels without a promise of their own get the default.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta


def first_response_due(
    channel: str,
    received_at: datetime,
    promises_seconds: Mapping[str, int],
    default_seconds: int,
) -> datetime:
    """When the customer is promised a first response, by the channel they came through."""
    return received_at + timedelta(seconds=promises_seconds.get(channel, default_seconds))


def info_due(requested_at: datetime, answer_within_hours: int) -> datetime:
    """By when a customer asked for missing information is expected to answer."""
    return requested_at + timedelta(hours=answer_within_hours)
