"""HTTP models of the intake API."""

from datetime import datetime
from typing import Any, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.events.payloads import Demand, OrderItem, OrderRef
from shared.events.vocabulary import (
    AfterSalesReason,
    Category,
    Channel,
    ComplaintTarget,
    ContactChannel,
    DemandType,
)
from shared.text import FreeText, SingleLine
from shared.time import utcnow

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
PHONE_PATTERN = r"^\+?[0-9][0-9 \-]{4,19}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,}$"


class CustomerIn(BaseModel):
    """The complainant as the storefront knows them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: SingleLine = Field(pattern=ID_PATTERN, examples=["cust-10086"])
    name: SingleLine | None = Field(default=None, min_length=1, max_length=100)
    phone: SingleLine | None = Field(default=None, pattern=PHONE_PATTERN, examples=["13800138000"])
    email: SingleLine | None = Field(default=None, pattern=EMAIL_PATTERN, max_length=320)
    preferred_channel: ContactChannel = ContactChannel.APP_PUSH

    @model_validator(mode="after")
    def _channel_has_an_address(self) -> Self:
        needs = {
            ContactChannel.SMS: ("phone", self.phone),
            ContactChannel.PHONE: ("phone", self.phone),
            ContactChannel.EMAIL: ("email", self.email),
        }.get(self.preferred_channel)
        if needs is not None and not needs[1]:
            raise ValueError(
                f"preferred_channel {self.preferred_channel.value} needs customer.{needs[0]}"
            )
        return self


class DemandIn(Demand):
    """A demand as the storefront may send it: only the demand types intake knows."""

    # Events carry demand types as open codes; the producer accepts only the known ones.
    type: DemandType


class OrderItemIn(OrderItem):
    """An order line as the storefront sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class OrderIn(OrderRef):
    """The order as the storefront sends it: dates may not lie in the future."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    number: SingleLine = Field(pattern=ID_PATTERN, examples=["2024042800123"])
    items: list[OrderItemIn] = Field(default_factory=list, max_length=100)  # type: ignore[assignment]

    @model_validator(mode="after")
    def _dates_make_sense(self) -> Self:
        now = utcnow()
        for name in ("placed_at", "delivered_at"):
            value = getattr(self, name)
            if value is not None and value > now:
                raise ValueError(f"order.{name} is in the future")
        if self.placed_at and self.delivered_at and self.delivered_at < self.placed_at:
            raise ValueError("order.delivered_at is before order.placed_at")
        return self


COMPLAINT_EXAMPLE_ZH: dict[str, Any] = {
    "channel": "chat",
    "customer": {
        "customer_id": "cust-10086",
        "name": "张三",
        "phone": "13800138000",
        "preferred_channel": "sms",
    },
    "order": {
        "number": "2024042800123",
        "placed_at": "2024-04-28T10:02:00+08:00",
        "delivered_at": "2024-05-08T15:30:00+08:00",
        "amount": "299.00",
        "currency": "CNY",
        "items": [
            {
                "sku": "KT-1500",
                "name": "电热水壶",
                "spec": "1.5L 白色",
                "quantity": 1,
                "unit_price": "299.00",
            }
        ],
    },
    "merchant_id": "m-4471",
    "target": "product",
    "after_sales_reason": "damaged",
    "description": "5月8日收到的水壶壶身有裂纹，一加水就漏，要求退货退款并补偿一张100元优惠券。",
    "demands": [{"type": "return"}, {"type": "refund"}, {"type": "compensation", "amount": "100"}],
    "evidence_ids": ["0b8a3c62-4f0e-4a59-9a43-6c1f5d9e2a11"],
    "occurred_at": "2024-05-08T15:40:00+08:00",
}
COMPLAINT_EXAMPLE_EN: dict[str, Any] = {
    "channel": "web",
    "customer": {
        "customer_id": "cust-20417",
        "email": "amy@example.com",
        "preferred_channel": "email",
    },
    "order": {
        "number": "2024050300777",
        "placed_at": "2024-05-03T09:00:00+08:00",
        "amount": "89.90",
        "items": [
            {"sku": "BK-42", "name": "Hardcover notebook", "quantity": 2, "unit_price": "44.95"}
        ],
    },
    "merchant_id": "m-2210",
    "target": "logistics",
    "after_sales_reason": "not_delivered",
    "description": "Tracking has said 'in transit' for 9 days and the courier does not answer.",
    "demands": [{"type": "reship"}, {"type": "explanation"}],
}


class ComplaintCreate(BaseModel):
    """A complaint or after-sales request posted by the storefront on a customer's behalf."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [COMPLAINT_EXAMPLE_ZH, COMPLAINT_EXAMPLE_EN]},
    )

    channel: Channel = Channel.APP
    customer: CustomerIn
    order: OrderIn | None = None
    merchant_id: SingleLine = Field(pattern=ID_PATTERN, examples=["m-4471"])
    target: ComplaintTarget = ComplaintTarget.PRODUCT
    category_hint: Category | None = None
    after_sales_reason: AfterSalesReason | None = None
    description: FreeText = Field(min_length=5, max_length=5000)
    demands: list[DemandIn] = Field(default_factory=list, max_length=8)
    evidence_ids: list[UUID] = Field(default_factory=list, max_length=20)
    occurred_at: AwareDatetime | None = None

    @field_validator("occurred_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value > utcnow():
            raise ValueError("occurred_at is in the future")
        return value

    @field_validator("demands")
    @classmethod
    def _no_repeated_demand(cls, value: list[DemandIn]) -> list[DemandIn]:
        kinds = [demand.type for demand in value]
        if len(kinds) != len(set(kinds)):
            raise ValueError("each demand type may appear once")
        return value

    @field_validator("evidence_ids")
    @classmethod
    def _no_repeated_evidence(cls, value: list[UUID]) -> list[UUID]:
        if len(value) != len(set(value)):
            raise ValueError("each evidence id may appear once")
        return value


class ComplaintSupplement(BaseModel):
    """Information a complaint in `needs_info` was asked for; only what is sent is changed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    order: OrderIn | None = None
    demands: list[DemandIn] | None = Field(default=None, max_length=8)
    evidence_ids: list[UUID] = Field(default_factory=list, max_length=20)
    occurred_at: AwareDatetime | None = None
    # Added to the description, never replacing the customer's first words.
    note: FreeText | None = Field(default=None, min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _supplies_something(self) -> Self:
        if not self.model_fields_set - {"evidence_ids"} and not self.evidence_ids:
            raise ValueError("a supplement must supply at least one item")
        return self


class Withdrawal(BaseModel):
    """The customer withdraws a complaint, optionally saying why."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: FreeText | None = Field(default=None, max_length=2000)


class MissingItemView(BaseModel):
    """One item the customer still has to supply."""

    field: str
    reason: str


class RejectionView(BaseModel):
    """Why a complaint was not taken on, and where the customer can turn instead."""

    code: str
    reason: str
    alternative: str


class ComplaintReceipt(BaseModel):
    """What the customer is told at once: the number, the status and by when they hear back.

    `status` is `received`, `needs_info` (see `missing`), or `rejected` (see `rejection`).
    A repeated submission answers with the open complaint it repeats (`duplicate_of_open`).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "complaint_id": "5f0c6a4e-2d7b-4d8e-9a51-3b2f7f1c9e20",
                    "complaint_number": "202405-000123",
                    "status": "received",
                    "received_at": "2024-05-10T09:30:00+08:00",
                    "respond_by": "2024-05-10T09:31:00+08:00",
                    "missing": [],
                    "info_due_at": None,
                    "rejection": None,
                    "duplicate_of_open": False,
                    "notes": [],
                },
                {
                    "complaint_id": "9b1d2c3e-4f50-4a61-8b72-9c8d7e6f5a41",
                    "complaint_number": "202405-000124",
                    "status": "needs_info",
                    "received_at": "2024-05-10T10:02:00+08:00",
                    "respond_by": "2024-05-11T10:02:00+08:00",
                    "missing": [
                        {
                            "field": "order.delivered_at",
                            "reason": "when the order was delivered: after-sales windows "
                            "count from that day",
                        },
                        {
                            "field": "evidence_ids",
                            "reason": "a photo or video that shows the problem with the goods",
                        },
                    ],
                    "info_due_at": "2024-05-12T10:02:00+08:00",
                    "rejection": None,
                    "duplicate_of_open": False,
                    "notes": [],
                },
                {
                    "complaint_id": "0d3e5f71-8a92-4bc3-9d04-e5f6a7b8c9d0",
                    "complaint_number": "202405-000125",
                    "status": "rejected",
                    "received_at": "2024-05-10T11:15:00+08:00",
                    "respond_by": "2024-05-11T11:15:00+08:00",
                    "missing": [],
                    "info_due_at": None,
                    "rejection": {
                        "code": "after_sales_window_expired",
                        "reason": "return requested 40 days after delivery, the window is 7 days",
                        "alternative": "the manufacturer's warranty service for defects, or "
                        "the national consumer complaint platform 12315 (全国12315平台) for a "
                        "dispute with the merchant",
                    },
                    "duplicate_of_open": False,
                    "notes": [],
                },
            ]
        }
    )

    complaint_id: UUID
    complaint_number: str
    status: str
    received_at: datetime
    respond_by: datetime
    missing: list[MissingItemView] = Field(default_factory=list)
    info_due_at: datetime | None = None
    rejection: RejectionView | None = None
    duplicate_of_open: bool = False
    # Other decisions of the initial checks, each with its reason (e.g. a demand out of time).
    notes: list[str] = Field(default_factory=list)


class ContactView(BaseModel):
    """Contact data as shown outside the customer's own session: masked."""

    name: str | None
    phone: str | None
    email: str | None
    preferred_channel: ContactChannel


class TimelineStepView(BaseModel):
    """One customer-visible step: what happened, when, in both languages."""

    at: datetime
    code: str
    summary_zh: str
    summary_en: str
    details: dict[str, Any] = Field(default_factory=dict)


class NextStepView(BaseModel):
    """The next thing promised to the customer, and by when."""

    step: str
    due_at: datetime | None


class EvidenceReceipt(BaseModel):
    """An accepted upload: name its `evidence_id` in `evidence_ids` when posting the complaint."""

    evidence_id: UUID
    kind: str
    media_type: str
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the content, hex")
    uploaded_at: datetime


class EvidenceView(BaseModel):
    """An evidence file's record; its content is at `/v1/evidence/{evidence_id}/content`."""

    evidence_id: UUID
    complaint_id: UUID | None
    kind: str
    media_type: str
    size_bytes: int
    sha256: str
    # The (sanitised) name it was uploaded with: shown to the storefront and admins only, as
    # names of files often name their owner.
    filename: str | None
    uploaded_at: datetime
    erased_at: datetime | None


class ComplaintView(BaseModel):
    """A complaint as the customer's view shows it: state, next promise, timeline, details.

    `visible_state` is one of the five states customers see (pending_acceptance, processing,
    awaiting_customer_confirmation, completed, closed); `status` is intake's own.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "complaint_id": "5f0c6a4e-2d7b-4d8e-9a51-3b2f7f1c9e20",
                    "complaint_number": "202405-000123",
                    "status": "received",
                    "visible_state": "processing",
                    "next_step": {"step": "first_response", "due_at": "2024-05-10T11:30:00+08:00"},
                    "timeline": [
                        {
                            "at": "2024-05-10T09:30:00+08:00",
                            "code": "received",
                            "summary_zh": "投诉已受理，编号已生成",
                            "summary_en": "Your complaint was received and numbered",
                            "details": {},
                        },
                        {
                            "at": "2024-05-10T09:30:01+08:00",
                            "code": "triaged",
                            "summary_zh": "投诉已分类，已转交负责团队",
                            "summary_en": "Your complaint was classified and passed to the "
                            "team that handles it",
                            "details": {"category": "product_quality", "priority": "urgent"},
                        },
                        {
                            "at": "2024-05-10T09:30:02+08:00",
                            "code": "case_opened",
                            "summary_zh": "专人正在处理您的投诉",
                            "summary_en": "An agent is now handling your complaint",
                            "details": {},
                        },
                    ],
                    "customer_id": "cust-10086",
                    "contact": {
                        "name": "张*",
                        "phone": "138****8000",
                        "email": None,
                        "preferred_channel": "sms",
                    },
                    "channel": "chat",
                    "target": "product",
                    "category_hint": None,
                    "after_sales_reason": "damaged",
                    "order": {
                        "number": "2024042800123",
                        "placed_at": "2024-04-28T10:02:00+08:00",
                        "delivered_at": "2024-05-08T15:30:00+08:00",
                        "amount": "299.00",
                        "currency": "CNY",
                        "items": [
                            {
                                "sku": "KT-1500",
                                "name": "电热水壶",
                                "spec": "1.5L 白色",
                                "quantity": 1,
                                "unit_price": "299.00",
                                "returnable_without_reason": True,
                            }
                        ],
                    },
                    "merchant_id": "m-4471",
                    "description": "5月8日收到的水壶壶身有裂纹，一加水就漏。",
                    "demands": [
                        {"type": "return", "amount": None, "currency": "CNY"},
                        {"type": "refund", "amount": None, "currency": "CNY"},
                    ],
                    "evidence": [
                        {
                            "evidence_id": "0b8a3c62-4f0e-4a59-9a43-6c1f5d9e2a11",
                            "complaint_id": "5f0c6a4e-2d7b-4d8e-9a51-3b2f7f1c9e20",
                            "kind": "photo",
                            "media_type": "image/jpeg",
                            "size_bytes": 482113,
                            "sha256": "9f2b5c0e6d1a4b7c8e3f0a1d2c4b6e8f"
                            "0a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b",
                            "filename": "kettle-crack.jpg",
                            "uploaded_at": "2024-05-10T09:28:41+08:00",
                            "erased_at": None,
                        }
                    ],
                    "occurred_at": "2024-05-08T15:40:00+08:00",
                    "received_at": "2024-05-10T09:30:00+08:00",
                    "respond_by": "2024-05-10T09:31:00+08:00",
                    "missing": [],
                    "info_due_at": None,
                    "rejection": None,
                    "notes": [],
                    "withdrawn_at": None,
                    "erased": False,
                    "correlation_id": "chat-7f3a2b",
                }
            ]
        }
    )

    complaint_id: UUID
    complaint_number: str
    status: str
    visible_state: str
    next_step: NextStepView | None
    timeline: list[TimelineStepView]
    customer_id: str
    # Masked; null once the customer's personal data was erased.
    contact: ContactView | None
    channel: str
    target: str
    category_hint: str | None
    after_sales_reason: str | None
    order: OrderRef | None
    merchant_id: str
    description: str
    demands: list[Demand]
    evidence: list[EvidenceView] = Field(default_factory=list)
    occurred_at: datetime | None
    received_at: datetime
    respond_by: datetime
    missing: list[MissingItemView]
    info_due_at: datetime | None
    rejection: RejectionView | None
    notes: list[str]
    withdrawn_at: datetime | None
    erased: bool
    correlation_id: str


class ComplaintSummary(BaseModel):
    """One line of a customer's history (the CRM view)."""

    complaint_id: UUID
    complaint_number: str
    status: str
    visible_state: str
    channel: str
    target: str
    merchant_id: str
    order_number: str | None
    received_at: datetime
    next_step: NextStepView | None


class ComplaintPage(BaseModel):
    """A page of a customer's history, newest first; pass `next_cursor` for the next page."""

    items: list[ComplaintSummary]
    next_cursor: str | None


class AccountFlag(BaseModel):
    """Marks an account for supervisor approval of any remedy (e.g. suspected abuse)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    flag: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["abuse_suspected"])
    reason: FreeText = Field(min_length=3, max_length=1000)


class AccountFlagView(BaseModel):
    """A flag on a customer's account."""

    customer_id: str
    flag: str
    reason: str
    flagged_at: datetime
    flagged_by: str


class ErasureReceipt(BaseModel):
    """What an erasure did: the complaints redacted and the evidence deleted."""

    customer_id: str
    complaints_redacted: int
    evidence_deleted: int
    erased_at: datetime
