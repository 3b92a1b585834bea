"""Payload classes of every event, grouped by topic. Additive, optional changes only.

Words that grow with the business (channels, categories, demand types, priorities, states)
travel as open codes: any lower_snake_case word is valid, the known ones are documented in the
schema, and a reader that meets one it does not know falls back or ignores it.
"""

from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events.envelope import EventPayload
from shared.events.topics import Topic
from shared.events.vocabulary import (
    CaseStatusCode,
    CategoryCode,
    ChannelCode,
    ComplaintTargetCode,
    ContactChannelCode,
    DemandTypeCode,
    OpenCode,
    PriorityCode,
)
from shared.text import FreeText, SingleLine


class Demand(BaseModel):
    """One thing the customer asks for, with an amount where stated."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: DemandTypeCode
    amount: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class ProductRef(BaseModel):
    """The product a complaint is about."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: SingleLine = Field(min_length=1, max_length=200)
    spec: SingleLine | None = Field(default=None, max_length=200)
    quantity: int = Field(default=1, ge=1, le=100_000)


# --- intake.complaint.v1 -------------------------------------------------------------


class ComplaintReceived(EventPayload):
    """A complaint was accepted and numbered (受理). Contact data travels sealed."""

    event_type: ClassVar[str] = "complaint.received"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.INTAKE_COMPLAINT

    complaint_number: str
    customer_id: str
    # AES-GCM sealed CustomerContact: only intake and notification hold the key.
    sealed_contact: str
    preferred_contact_channel: ContactChannelCode
    order_number: str | None = None
    merchant_id: str
    channel: ChannelCode
    target: ComplaintTargetCode
    category_hint: CategoryCode | None = None
    description: FreeText
    demands: list[Demand] = Field(default_factory=list)
    product: ProductRef | None = None
    delivered_at: AwareDatetime | None = None
    received_at: AwareDatetime
    # The storefront that posted it (its API key's storefront); absent from older producers.
    storefront_id: str | None = None


# --- triage.complaint.v1 -------------------------------------------------------------


class ComplaintTriaged(EventPayload):
    """A complaint got its category, priority, owning team and first-response deadline."""

    event_type: ClassVar[str] = "complaint.triaged"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.TRIAGE_COMPLAINT

    complaint_number: str
    merchant_id: str
    category: CategoryCode
    priority: PriorityCode
    team: str
    provisional: bool
    first_response_due_at: AwareDatetime
    triaged_at: AwareDatetime


# --- resolution.case.v1 (merchant systems consume it: no customer contact data) -----


class CaseOpened(EventPayload):
    """A resolution case was opened for a triaged complaint."""

    event_type: ClassVar[str] = "case.opened"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.RESOLUTION_CASE

    case_id: UUID
    complaint_number: str
    merchant_id: str
    priority: PriorityCode
    status: CaseStatusCode
    first_response_due_at: AwareDatetime
    opened_at: AwareDatetime


# --- notification.delivery.v1 --------------------------------------------------------


class AcknowledgementRecorded(EventPayload):
    """The customer's acknowledgement (receipt + promised time) was recorded for delivery."""

    event_type: ClassVar[str] = "acknowledgement.recorded"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.NOTIFICATION_DELIVERY

    notification_id: UUID
    complaint_number: str
    channel: ContactChannelCode
    # Only acknowledgements today; other kinds (progress updates...) will share this event.
    kind: OpenCode = "acknowledgement"
    respond_by: AwareDatetime
    recorded_at: AwareDatetime
