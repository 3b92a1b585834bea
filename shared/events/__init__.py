"""THE event contracts: envelope, payload classes, topic names, decoding."""

from shared.events.envelope import EventEnvelope, EventPayload, RawEnvelope, new_event
from shared.events.payloads import (
    AcknowledgementRecorded,
    CaseOpened,
    ComplaintReceived,
    ComplaintTriaged,
    Demand,
    ProductRef,
)
from shared.events.registry import (
    PAYLOAD_CLASSES,
    UndecodableEventError,
    UnsupportedSchemaVersionError,
    decode_event,
    decode_payload,
    parse_envelope,
)
from shared.events.topics import Topic, all_topic_names, dlq_topic, qualified_topic

__all__ = [
    "PAYLOAD_CLASSES",
    "AcknowledgementRecorded",
    "CaseOpened",
    "ComplaintReceived",
    "ComplaintTriaged",
    "Demand",
    "EventEnvelope",
    "EventPayload",
    "ProductRef",
    "RawEnvelope",
    "Topic",
    "UndecodableEventError",
    "UnsupportedSchemaVersionError",
    "all_topic_names",
    "decode_event",
    "decode_payload",
    "dlq_topic",
    "new_event",
    "parse_envelope",
    "qualified_topic",
]
