"""What each message's templates may use: one model per message type, with a sample.

The service builds these from events and its own records; `templates.render` validates a
context against its model first, so a missing or mistyped value is named before any template
runs. The samples feed the ops preview and the test that renders every template.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.events.vocabulary import CODE_PATTERN


class MessageContext(BaseModel):
    """Values a template may print; every timestamp is aware (printed in the reader's zone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Money(MessageContext):
    """An amount in a currency, printed per locale (¥1,234.50 / CN¥1,234.50)."""

    amount: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class CustomerMessage(MessageContext):
    """What every message to a customer may use."""

    complaint_number: str = Field(min_length=1)
    # For the greeting only; redacted from the delivery log with the rest of the contact.
    customer_name: str | None = None
    # Where the customer follows the complaint in the storefront.
    status_url: str | None = None


class Receipt(CustomerMessage):
    """complaint.received: the number and the promised first response (受理回执)."""

    received_at: AwareDatetime
    respond_by: AwareDatetime
    order_number: str | None = None


class MissingInformation(MessageContext):
    """One item the complaint lacks: intake's field path and its reason (in English)."""

    field: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class InformationRequest(CustomerMessage):
    """complaint.info_requested: everything missing at once, and by when."""

    missing: tuple[MissingInformation, ...] = Field(min_length=1)
    respond_by: AwareDatetime
    supplement_url: str | None = None


class Rejection(CustomerMessage):
    """complaint.rejected: why, and where the customer can still turn."""

    reason_code: str = Field(pattern=CODE_PATTERN)
    reason: str = Field(min_length=1)
    alternative: str = Field(min_length=1)
    rejected_at: AwareDatetime


class Withdrawal(CustomerMessage):
    """complaint.withdrawn: the confirmation."""

    withdrawn_at: AwareDatetime


class DuplicateLinked(CustomerMessage):
    """complaint.linked_duplicate: the new words joined the open complaint."""

    submitted_at: AwareDatetime
    respond_by: AwareDatetime | None = None


class CaseOpenedNotice(CustomerMessage):
    """case.opened: being handled, first answer by when."""

    priority: str = Field(pattern=CODE_PATTERN)
    first_response_due_at: AwareDatetime


class RemedyOffer(MessageContext):
    """One remedy of an offer: refund, coupon, reship... with its amount where it has one."""

    type: str = Field(pattern=CODE_PATTERN)
    amount: Money | None = None
    note: str | None = None


class RemedyProposal(CustomerMessage):
    """case.remedy_offered: the offer the customer decides on (and by when, if there is a date)."""

    remedies: tuple[RemedyOffer, ...] = Field(min_length=1)
    # Resolution sets no decision deadline today: the message then asks without a date.
    respond_by: AwareDatetime | None = None
    decision_url: str | None = None


class Refund(MessageContext):
    """A refund on its way: how much, to what, and by when it arrives."""

    amount: Money
    expected_by: AwareDatetime
    # original_payment, balance... (open vocabulary).
    method: str = Field(default="original_payment", pattern=CODE_PATTERN)


class Shipment(MessageContext):
    """Goods on their way: a reship, an exchange, a repaired item."""

    carrier: str = Field(min_length=1)
    tracking_number: str = Field(min_length=1)


class Coupon(MessageContext):
    """A coupon granted: its code, value and expiry."""

    code: str = Field(min_length=1)
    value: Money
    expires_at: AwareDatetime


class Resolution(CustomerMessage):
    """case.resolved: what was decided and what happens next."""

    resolved_at: AwareDatetime
    summary: str | None = None
    refund: Refund | None = None
    shipment: Shipment | None = None
    coupon: Coupon | None = None
    # Until when the customer may appeal the outcome.
    appeal_until: AwareDatetime | None = None


class CaseRejection(CustomerMessage):
    """case.rejected: the case was looked into and no remedy is due, with the explanation."""

    decided_at: AwareDatetime
    explanation: str = Field(min_length=1)
    # Until when the customer may ask for a review.
    appeal_until: AwareDatetime | None = None


class ProgressUpdate(CustomerMessage):
    """notification.progress_update: where a delayed parcel is, every 24 hours.

    Until the complaint's merchant reports the parcel (PUT /v1/complaints/{id}/parcel) its
    fields are absent and the message says the carrier is being asked; after, the carrier,
    tracking number and latest status come together (the expected delivery when known).
    """

    carrier: str | None = Field(default=None, min_length=1)
    tracking_number: str | None = Field(default=None, min_length=1)
    latest_status: str | None = Field(default=None, min_length=1)
    latest_status_at: AwareDatetime | None = None
    expected_delivery_at: AwareDatetime | None = None
    next_update_at: AwareDatetime

    @model_validator(mode="after")
    def _parcel_whole_or_absent(self) -> Self:
        parcel = (self.carrier, self.tracking_number, self.latest_status, self.latest_status_at)
        if any(value is not None for value in parcel) and None in parcel:
            raise ValueError("carrier, tracking number, latest status and its time come together")
        return self


class SurveyInvitation(CustomerMessage):
    """notification.survey_invitation and _reminder: the signed link and its expiry."""

    survey_url: str = Field(min_length=1)
    expires_at: AwareDatetime


class SlaAlert(MessageContext):
    """complaint.sla_warning and _breached, to the assigned agent and the supervisor."""

    complaint_number: str = Field(min_length=1)
    # Which deadline, as triage names its SLA clocks: first_response or resolution.
    clock: str = Field(pattern=CODE_PATTERN)
    due_at: AwareDatetime
    priority: str = Field(pattern=CODE_PATTERN)
    team: str = Field(min_length=1)
    assigned_agent: str | None = None
    case_url: str | None = None


class Assignment(MessageContext):
    """case.assigned: a new case in an agent's queue (deadlines where the sender knows them)."""

    complaint_number: str = Field(min_length=1)
    case_id: UUID
    agent_name: str | None = None
    priority: str | None = Field(default=None, pattern=CODE_PATTERN)
    category: str | None = Field(default=None, pattern=CODE_PATTERN)
    first_response_due_at: AwareDatetime | None = None
    resolution_due_at: AwareDatetime | None = None
    case_url: str | None = None


CONTEXT_MODELS: dict[str, type[MessageContext]] = {
    "complaint.received": Receipt,
    "complaint.info_requested": InformationRequest,
    "complaint.rejected": Rejection,
    "complaint.withdrawn": Withdrawal,
    "complaint.linked_duplicate": DuplicateLinked,
    "complaint.sla_warning": SlaAlert,
    "complaint.sla_breached": SlaAlert,
    "case.opened": CaseOpenedNotice,
    "case.assigned": Assignment,
    "case.remedy_offered": RemedyProposal,
    "case.resolved": Resolution,
    "case.rejected": CaseRejection,
    "notification.progress_update": ProgressUpdate,
    "notification.survey_invitation": SurveyInvitation,
    "notification.survey_reminder": SurveyInvitation,
}

# Sample data: a Shanghai customer's complaint in May 2024 (times are UTC; they print local).
_NUMBER = "202405-000123"
_STATUS_URL = "https://shop.example.com/complaints/202405-000123"


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


def _cny(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="CNY")


_CUSTOMER: dict[str, Any] = {
    "complaint_number": _NUMBER,
    "customer_name": "张伟",
    "status_url": _STATUS_URL,
}
_OFFER = (
    RemedyOffer(type="refund", amount=_cny("199.00")),
    RemedyOffer(type="coupon", amount=_cny("50.00"), note="满100可用"),
    RemedyOffer(type="apology"),
)

SAMPLES: dict[str, MessageContext] = {
    "complaint.received": Receipt(
        **_CUSTOMER, received_at=_at(3, 2), respond_by=_at(4, 2), order_number="O2024050112345"
    ),
    "complaint.info_requested": InformationRequest(
        **_CUSTOMER,
        missing=(
            MissingInformation(
                field="order.number",
                reason="the order number, so the merchant and the carrier can check it",
            ),
            MissingInformation(
                field="evidence_ids",
                reason="a photo or video that shows the problem with the goods",
            ),
            MissingInformation(field="order.gift_wrap", reason="whether the order was a gift"),
        ),
        respond_by=_at(5, 2),
        supplement_url=f"{_STATUS_URL}/supplements",
    ),
    "complaint.rejected": Rejection(
        **_CUSTOMER,
        reason_code="after_sales_window_expired",
        reason="return requested 40 days after delivery, the window is 15 days",
        alternative="the manufacturer's warranty service, or the national consumer complaint "
        "platform 12315",
        rejected_at=_at(3, 2, 1),
    ),
    "complaint.withdrawn": Withdrawal(**_CUSTOMER, withdrawn_at=_at(3, 9, 30)),
    "complaint.linked_duplicate": DuplicateLinked(
        **_CUSTOMER, submitted_at=_at(3, 5), respond_by=_at(4, 2)
    ),
    "complaint.sla_warning": SlaAlert(
        complaint_number=_NUMBER,
        clock="first_response",
        due_at=_at(4, 2),
        priority="important",
        team="logistics",
        assigned_agent="李娜 (agent-0042)",
        case_url="https://ops.example.com/cases/202405-000123",
    ),
    "complaint.sla_breached": SlaAlert(
        complaint_number=_NUMBER,
        clock="resolution",
        due_at=_at(6, 2),
        priority="important",
        team="logistics",
        assigned_agent="李娜 (agent-0042)",
        case_url="https://ops.example.com/cases/202405-000123",
    ),
    "case.opened": CaseOpenedNotice(
        **_CUSTOMER, priority="important", first_response_due_at=_at(4, 2)
    ),
    "case.assigned": Assignment(
        complaint_number=_NUMBER,
        case_id=UUID("6f9619ff-8b86-4d11-b42d-00c04fc964ff"),
        agent_name="李娜",
        priority="urgent",
        category="safety",
        first_response_due_at=_at(3, 4),
        resolution_due_at=_at(4, 2),
        case_url="https://ops.example.com/cases/202405-000123",
    ),
    "case.remedy_offered": RemedyProposal(
        **_CUSTOMER, remedies=_OFFER, respond_by=_at(6, 2), decision_url=f"{_STATUS_URL}/offer"
    ),
    "case.resolved": Resolution(
        **_CUSTOMER,
        resolved_at=_at(5, 6),
        summary="商家已确认商品在运输中破损，同意补发并补偿。",
        refund=Refund(amount=_cny("199.00"), expected_by=_at(8, 10)),
        shipment=Shipment(carrier="顺丰速运", tracking_number="SF1234567890123"),
        coupon=Coupon(code="SORRY-7Q2X-K9", value=_cny("50.00"), expires_at=_at(31, 15, 59)),
        appeal_until=_at(12, 6),
    ),
    "case.rejected": CaseRejection(
        **_CUSTOMER,
        decided_at=_at(5, 6),
        explanation="签收记录和开箱视频显示商品完好，破损发生在签收后的使用过程中。",
        appeal_until=_at(12, 6),
    ),
    "notification.progress_update": ProgressUpdate(
        **_CUSTOMER,
        carrier="中通快递",
        tracking_number="ZTO78451296300",
        latest_status="到达【上海转运中心】",
        latest_status_at=_at(4, 1, 20),
        expected_delivery_at=_at(5, 10),
        next_update_at=_at(5, 2),
    ),
    "notification.survey_invitation": SurveyInvitation(
        **_CUSTOMER, survey_url="https://shop.example.com/survey/eyJjIjo", expires_at=_at(12, 6)
    ),
    "notification.survey_reminder": SurveyInvitation(
        **_CUSTOMER, survey_url="https://shop.example.com/survey/eyJjIjo", expires_at=_at(12, 6)
    ),
}


def sample_context(message_type: str) -> MessageContext:
    """Sample data for a message type (the ops preview); KeyError when it has no model."""
    return SAMPLES[message_type]


def minimal_context(sample: MessageContext) -> MessageContext:
    """The same sample with every optional value left out: templates must read well without."""
    model = type(sample)
    required = {
        name: getattr(sample, name)
        for name, field in model.model_fields.items()
        if field.is_required()
    }
    return model(**required)
