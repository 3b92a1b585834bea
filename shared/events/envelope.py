"""The one envelope every event travels in, and the base class of payloads."""

import uuid
from typing import Any, ClassVar, Generic, TypeVar, cast
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events.topics import Topic
from shared.time import utcnow

CORRELATION_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"


class EventPayload(BaseModel):
    """Base of every payload: names its event type, major version and topic."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int]
    topic: ClassVar[Topic]


PayloadT = TypeVar("PayloadT", bound=EventPayload)


class EventEnvelope(BaseModel, Generic[PayloadT]):
    """Metadata common to all events plus the typed payload."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: UUID
    event_type: str = Field(min_length=1, max_length=100)
    schema_version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, max_length=100)
    complaint_id: UUID
    correlation_id: str = Field(pattern=CORRELATION_ID_PATTERN)
    causation_id: UUID | None = None
    payload: PayloadT


class RawEnvelope(EventEnvelope[Any]):
    """An envelope whose payload is not yet validated against its class."""

    payload: dict[str, Any]


def new_event(
    payload: PayloadT,
    *,
    producer: str,
    complaint_id: UUID,
    correlation_id: str,
    causation: EventEnvelope[Any] | None = None,
) -> EventEnvelope[PayloadT]:
    """Wraps a payload in a fresh envelope; `causation` is the event that caused this one."""
    # Parametrised by the concrete class so the payload serialises with all its fields.
    envelope_class = cast("type[EventEnvelope[PayloadT]]", EventEnvelope[type(payload)])  # type: ignore[misc]
    return envelope_class(
        event_id=uuid.uuid4(),
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        occurred_at=utcnow(),
        producer=producer,
        complaint_id=complaint_id,
        correlation_id=correlation_id,
        causation_id=causation.event_id if causation else None,
        payload=payload,
    )
