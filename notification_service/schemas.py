"""HTTP models of the notification API."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from notification_service.domain.preferences import CustomerPreferences
from notification_service.domain.templates import DEFAULT_TIME_ZONE
from shared.text import SingleLine


class RecipientView(BaseModel):
    """Who is told, masked."""

    customer_id: str
    preferred_channel: str
    phone: str | None
    email: str | None


class NotificationView(BaseModel):
    """One message recorded for the customer."""

    notification_id: UUID
    kind: str
    channel: str | None
    status: str
    body: str
    respond_by: datetime
    recorded_at: datetime


class DeliveryAttemptView(BaseModel):
    """One attempt to send a message, with the provider's answer (redacted)."""

    attempt: int
    status: str
    provider_reference: str | None
    provider_response: str
    attempted_at: datetime


class MessageView(BaseModel):
    """One message of the delivery log: to whom (the audience), how, and how it went."""

    message_id: UUID
    # Its idempotency key: the Message-ID, Idempotency-Key or webhook-id every attempt carries.
    delivery_key: str
    message_type: str
    audience: str
    channel: str | None
    # awaiting_contact, queued, sending, retrying, sent, failed, uncertain, dead_letter, skipped
    status: str
    reason: str | None
    # What was sent, redacted of contact data; empty until the first attempt renders it.
    subject: str | None
    body: str | None
    template: str | None
    template_version: int | None
    locale: str | None
    attempts: list[DeliveryAttemptView]
    send_at: datetime | None
    sent_at: datetime | None
    created_at: datetime


class ComplaintNotificationsView(BaseModel):
    """Notification's view of a complaint."""

    complaint_id: UUID
    complaint_number: str
    recipient: RecipientView | None
    notifications: list[NotificationView]
    # The delivery log: every message the complaint's events caused.
    messages: list[MessageView] = []


class WebhookEndpointCreate(BaseModel):
    """A merchant's endpoint to register: where to post, and the merchant's label for it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000, examples=["https://erp.merchant.example/hooks"])
    # The merchant's own name for it ("ERP production").
    label: SingleLine | None = Field(default=None, max_length=200)


class WebhookEndpointView(BaseModel):
    """A registered endpoint, without its secret."""

    endpoint_id: UUID
    merchant_id: str
    url: str
    label: str | None
    created_at: datetime
    rotated_at: datetime | None


class WebhookEndpointCreated(WebhookEndpointView):
    """An endpoint with its secret (`whsec_...`): shown on creation and rotation, never again."""

    secret: str


class WebhookEndpointList(BaseModel):
    """A merchant's endpoints."""

    items: list[WebhookEndpointView]


class PreferencesView(BaseModel):
    """A customer's preferences; `stated` false: the defaults their latest complaint implies."""

    customer_id: str
    stated: bool
    preferences: CustomerPreferences
    updated_at: datetime | None


class PreviewRequest(BaseModel):
    """What to render: a context of the message type's model, or none for its sample."""

    model_config = ConfigDict(extra="forbid")

    context: dict[str, Any] | None = None
    time_zone: str = Field(default=DEFAULT_TIME_ZONE, max_length=64)


class PreviewView(BaseModel):
    """A rendered template, as its reader would see it."""

    message_type: str
    channel: str
    template: str
    template_version: int
    locale: str
    subject: str | None
    text: str
    html: str | None


class SurveyRequest(BaseModel):
    """Ops ask for a case's survey: when the case was resolved (now if not given)."""

    model_config = ConfigDict(extra="forbid")

    resolved_at: AwareDatetime | None = None


class SurveyView(BaseModel):
    """A case's survey: when it was sent and reminded, and the answer."""

    case_id: UUID
    complaint_id: UUID
    complaint_number: str
    merchant_id: str
    requested_by: str
    resolved_at: datetime
    invited_at: datetime | None
    expires_at: datetime | None
    reminded_at: datetime | None
    answered_at: datetime | None
    score: int | None
    reasons: list[str]
    # Whose KPIs the reasons count for: agent, merchant, platform.
    subjects: list[str]
    comment: str | None


class SurveyList(BaseModel):
    """Survey results, with how many were answered and their average score."""

    items: list[SurveyView]
    answered: int
    average_score: float | None


class SurveyReceipt(BaseModel):
    """What the anonymous answerer is told: thanks, for which complaint, when."""

    complaint_number: str
    answered_at: datetime


STAFF_EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,}$"


class StaffContactPut(BaseModel):
    """A staff member's own address: their assignments and SLA alerts go there."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(
        pattern=STAFF_EMAIL_PATTERN, max_length=320, examples=["li.na@ops.example.com"]
    )


class StaffContactView(BaseModel):
    """A staff member's directory entry, the address masked."""

    staff_id: str
    email: str
    updated_by: str
    updated_at: datetime


class ParcelReport(BaseModel):
    """Where a complaint's parcel is: the carrier's latest status, from the merchant's system."""

    model_config = ConfigDict(extra="forbid")

    carrier: SingleLine = Field(min_length=1, max_length=100, examples=["SF Express 顺丰速运"])
    tracking_number: str = Field(pattern=r"^[A-Za-z0-9\-]{4,40}$", examples=["SF1234567890"])
    status: SingleLine = Field(
        min_length=1, max_length=200, examples=["到达【上海转运中心】 arrived at Shanghai hub"]
    )
    status_at: AwareDatetime
    expected_delivery_at: AwareDatetime | None = None
    # Delivered: progress updates stop (they run until the parcel arrives or the case ends).
    delivered: bool = False


class ParcelView(BaseModel):
    """A complaint's parcel as last reported (an older report than it changes nothing)."""

    complaint_id: UUID
    carrier: str
    tracking_number: str
    status: str
    status_at: datetime
    expected_delivery_at: datetime | None
    delivered: bool
    reported_by: str
    updated_at: datetime
