"""Decoding raw Kafka messages into typed envelopes, by event type and major version."""

import functools
from typing import Any

from pydantic import ValidationError

from shared.events.envelope import EventEnvelope, EventPayload, RawEnvelope
from shared.events.payloads import (
    CASE_CHANGES,
    AcknowledgementRecorded,
    CaseOpened,
    ComplaintEscalated,
    ComplaintInfoRequested,
    ComplaintInfoSupplied,
    ComplaintLinkedDuplicate,
    ComplaintReceived,
    ComplaintRejected,
    ComplaintRetriaged,
    ComplaintSlaBreached,
    ComplaintSlaWarning,
    ComplaintTriaged,
    ComplaintWithdrawn,
    CustomerErased,
    NotificationFailed,
    NotificationSent,
    SurveyCompleted,
)
from shared.text import LENIENT_TEXT

PAYLOAD_CLASSES: tuple[type[EventPayload], ...] = (
    ComplaintReceived,
    ComplaintInfoRequested,
    ComplaintInfoSupplied,
    ComplaintRejected,
    ComplaintWithdrawn,
    ComplaintLinkedDuplicate,
    CustomerErased,
    ComplaintTriaged,
    ComplaintRetriaged,
    ComplaintSlaWarning,
    ComplaintSlaBreached,
    ComplaintEscalated,
    CaseOpened,
    *CASE_CHANGES,
    AcknowledgementRecorded,
    NotificationSent,
    NotificationFailed,
    SurveyCompleted,
)

_BY_TYPE_AND_VERSION: dict[tuple[str, int], type[EventPayload]] = {
    (cls.event_type, cls.schema_version): cls for cls in PAYLOAD_CLASSES
}


def register_payload(cls: type[EventPayload]) -> type[EventPayload]:
    """Makes a payload class decodable (the contract classes above are registered already)."""
    _BY_TYPE_AND_VERSION[(cls.event_type, cls.schema_version)] = cls
    return cls


class UndecodableEventError(Exception):
    """The message is not a valid event: it belongs in the dead-letter topic."""


class UnsupportedSchemaVersionError(UndecodableEventError):
    """The event type is known but this major version is not."""


def parse_envelope(raw: bytes | None) -> RawEnvelope:
    """Parses the envelope of a Kafka message value, leaving the payload untyped."""
    if raw is None:
        raise UndecodableEventError("message has no value")
    try:
        return RawEnvelope.model_validate_json(raw)
    except ValidationError as exc:
        raise UndecodableEventError(f"invalid envelope: {_summarise(exc)}") from exc


def decode_payload(envelope: RawEnvelope) -> EventEnvelope[Any]:
    """Validates the payload against its class; unknown versions are refused."""
    cls = _BY_TYPE_AND_VERSION.get((envelope.event_type, envelope.schema_version))
    if cls is None:
        raise UnsupportedSchemaVersionError(
            f"no payload class for {envelope.event_type} v{envelope.schema_version}"
        )
    try:
        # Readers tolerate text a producer would now refuse: never dead-letter for it.
        payload = cls.model_validate(envelope.payload, context=LENIENT_TEXT)
    except ValidationError as exc:
        raise UndecodableEventError(
            f"invalid {envelope.event_type} payload: {_summarise(exc)}"
        ) from exc
    return EventEnvelope[cls].model_validate(  # type: ignore[valid-type]
        {**envelope.model_dump(exclude={"payload"}), "payload": payload}
    )


def decode_event(raw: bytes | None) -> EventEnvelope[Any]:
    """Parses and validates a whole event."""
    return decode_payload(parse_envelope(raw))


def decode_declared(
    raw: bytes | None, event_type: str, schema_version: int
) -> EventEnvelope[Any] | None:
    """One typed parse of an event whose headers name its type and major version.

    None when the pair is not registered or the body disagrees with the headers: the
    caller then takes the general path (envelope first, then payload), whose errors say
    what is wrong.
    """
    cls = _BY_TYPE_AND_VERSION.get((event_type, schema_version))
    if cls is None or raw is None:
        return None
    try:
        event = _typed_envelope(cls).model_validate_json(raw, context=LENIENT_TEXT)
    except ValidationError:
        return None
    if event.event_type != event_type or event.schema_version != schema_version:
        return None
    return event


@functools.cache
def _typed_envelope(cls: type[EventPayload]) -> type[EventEnvelope[Any]]:
    return EventEnvelope[cls]  # type: ignore[valid-type]


def _summarise(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors()[:5]
    )
