"""HTTP models of the intake API."""

from datetime import datetime
from typing import Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.events.payloads import Demand, ProductRef
from shared.events.vocabulary import Category, Channel, ComplaintTarget, ContactChannel, DemandType
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


class ComplaintCreate(BaseModel):
    """A complaint or after-sales request posted by the storefront on a customer's behalf."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer: CustomerIn
    order_number: SingleLine | None = Field(
        default=None, pattern=ID_PATTERN, examples=["2024042800123"]
    )
    merchant_id: SingleLine = Field(pattern=ID_PATTERN, examples=["m-4471"])
    channel: Channel = Channel.APP
    target: ComplaintTarget = ComplaintTarget.PRODUCT
    category_hint: Category | None = None
    description: FreeText = Field(min_length=5, max_length=5000)
    demands: list[DemandIn] = Field(default_factory=list, max_length=8)
    product: ProductRef | None = None
    delivered_at: AwareDatetime | None = None

    @field_validator("delivered_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value > utcnow():
            raise ValueError("delivered_at is in the future")
        return value

    @field_validator("demands")
    @classmethod
    def _no_repeated_demand(cls, value: list[DemandIn]) -> list[DemandIn]:
        kinds = [demand.type for demand in value]
        if len(kinds) != len(set(kinds)):
            raise ValueError("each demand type may appear once")
        return value


class ComplaintReceipt(BaseModel):
    """What the customer is told at once: the number and by when they hear back."""

    complaint_id: UUID
    complaint_number: str
    status: str
    received_at: datetime
    respond_by: datetime


class ContactView(BaseModel):
    """Contact data as shown outside the customer's own session: masked."""

    name: str | None
    phone: str | None
    email: str | None
    preferred_channel: ContactChannel


class ComplaintView(BaseModel):
    """Intake's view of a complaint."""

    complaint_id: UUID
    complaint_number: str
    status: str
    customer_id: str
    contact: ContactView
    order_number: str | None
    merchant_id: str
    channel: Channel
    target: ComplaintTarget
    category_hint: Category | None
    description: str
    demands: list[Demand]
    product: ProductRef | None
    delivered_at: datetime | None
    received_at: datetime
    respond_by: datetime
    correlation_id: str
