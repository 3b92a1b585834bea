"""Kafka headers that repeat the envelope's routing facts and carry trace context."""

import os
from typing import Any

from shared.events.envelope import EventEnvelope

Headers = list[tuple[str, bytes]]


def new_traceparent() -> str:
    """A W3C traceparent for a new trace (version 00, sampled)."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def child_traceparent(parent: str | None) -> str:
    """Continues a W3C trace with a new span id, or starts one."""
    parts = (parent or "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32:
        return f"00-{parts[1]}-{os.urandom(8).hex()}-{parts[3]}"
    return new_traceparent()


def event_type_from_headers(headers: Any) -> str | None:
    """The event type a message's headers name, so an unknown type is skipped unparsed."""
    return header_value(headers, "event_type") or None


def event_headers(envelope: EventEnvelope[Any], *, traceparent: str | None = None) -> Headers:
    """Headers of a published event; merchant_id is repeated for merchant-side filtering."""
    headers: Headers = [
        ("event_type", envelope.event_type.encode()),
        ("schema_version", str(envelope.schema_version).encode()),
        ("event_id", str(envelope.event_id).encode()),
        ("complaint_id", str(envelope.complaint_id).encode()),
        ("correlation_id", envelope.correlation_id.encode()),
        ("traceparent", child_traceparent(traceparent).encode()),
    ]
    merchant_id = getattr(envelope.payload, "merchant_id", None)
    if merchant_id:
        headers.append(("merchant_id", str(merchant_id).encode()))
    return headers


def header_value(headers: Any, name: str) -> str | None:
    """Reads one header as text from an aiokafka message's header sequence."""
    for key, value in headers or ():
        if key == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return None


# Set by the DLQ replayer: a replayed message is meant for the consumer group that dead-lettered
# it, not for every group subscribed to the topic.
REPLAY_FOR_GROUP_HEADER = "dlq.replay_for_group"


def is_replay_for_other_group(headers: Any, group_id: str) -> bool:
    """True when a message is a dead-letter replay meant for another consumer group."""
    target = header_value(headers, REPLAY_FOR_GROUP_HEADER)
    return bool(target) and target != group_id
