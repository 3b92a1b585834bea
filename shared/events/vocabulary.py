"""The complaint domain's shared words: known values (enums) and open codes for contracts."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


class Channel(StrEnum):
    """Where a complaint came in (受理渠道)."""

    APP = "app"
    WEB = "web"
    CHAT = "chat"
    HOTLINE = "hotline"
    EMAIL = "email"
    SOCIAL = "social"
    STORE = "store"
    OTHER = "other"


class ContactChannel(StrEnum):
    """How the customer wants to hear back."""

    SMS = "sms"
    APP_PUSH = "app_push"
    EMAIL = "email"
    PHONE = "phone"


class ComplaintTarget(StrEnum):
    """What the complaint is about (投诉对象)."""

    MERCHANT = "merchant"
    PRODUCT = "product"
    SERVICE = "service"
    LOGISTICS = "logistics"
    PLATFORM = "platform"
    FACILITY = "facility"
    STAFF = "staff"


class DemandType(StrEnum):
    """What the customer asks for (诉求)."""

    REFUND = "refund"
    RETURN = "return"
    EXCHANGE = "exchange"
    REPAIR = "repair"
    RESHIP = "reship"
    APOLOGY = "apology"
    COMPENSATION = "compensation"
    EXPLANATION = "explanation"


class AfterSalesReason(StrEnum):
    """Why the customer asks for after-sales (退换货原因), as the storefront's form offers."""

    QUALITY_ISSUE = "quality_issue"
    DAMAGED = "damaged"
    NOT_AS_DESCRIBED = "not_as_described"
    WRONG_ITEM = "wrong_item"
    MISSING_PARTS = "missing_parts"
    EXPIRED = "expired"
    NOT_DELIVERED = "not_delivered"
    CHANGED_MIND = "changed_mind"
    OTHER = "other"


class Category(StrEnum):
    """First-level category tags (标签体系): the level-1 codes of triage's taxonomy."""

    PRODUCT_QUALITY = "product_quality"
    LOGISTICS = "logistics"
    AFTER_SALES = "after_sales"
    SERVICE_ATTITUDE = "service_attitude"
    SYSTEM_FAILURE = "system_failure"
    TRANSACTION_DISPUTE = "transaction_dispute"
    MISLEADING_INFO = "misleading_info"
    FACILITIES = "facilities"
    SAFETY = "safety"
    OTHER = "other"


class Priority(StrEnum):
    """Priority levels with their first-response deadline (紧急/重要/一般)."""

    URGENT = "urgent"
    IMPORTANT = "important"
    GENERAL = "general"


class CaseStatus(StrEnum):
    """Ticket states named in the manuals."""

    PENDING_ACCEPTANCE = "pending_acceptance"
    PROCESSING = "processing"
    AWAITING_CUSTOMER_CONFIRMATION = "awaiting_customer_confirmation"
    COMPLETED = "completed"
    CLOSED = "closed"


# --- Open vocabularies in contracts --------------------------------------------------
# The enums above are the values known today: producers and HTTP validate against them.
# Event payloads carry these words as open codes instead, so a producer upgraded with a new
# category, channel or state first never sends an older consumer's events to the DLQ: the
# consumer falls back (see `known`) or ignores the value.

CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class KnownValues:
    """Documents a vocabulary's known values in the JSON Schema as `examples`, not `enum`."""

    vocabulary: type[StrEnum]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Adds the known values to the schema of an open code."""
        schema = handler(core_schema)
        summary = (self.vocabulary.__doc__ or self.vocabulary.__name__).strip()
        schema["description"] = (
            f"{summary} Open vocabulary: any lower_snake_case code may appear; the known ones "
            "are listed as examples, and a reader falls back on a code it does not know."
        )
        schema["examples"] = [member.value for member in self.vocabulary]
        return schema


OpenCode = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
"""A lower_snake_case word of an open vocabulary: any such word is valid on the wire."""

ChannelCode = Annotated[OpenCode, KnownValues(Channel)]
ContactChannelCode = Annotated[OpenCode, KnownValues(ContactChannel)]
ComplaintTargetCode = Annotated[OpenCode, KnownValues(ComplaintTarget)]
DemandTypeCode = Annotated[OpenCode, KnownValues(DemandType)]
CategoryCode = Annotated[OpenCode, KnownValues(Category)]
PriorityCode = Annotated[OpenCode, KnownValues(Priority)]
CaseStatusCode = Annotated[OpenCode, KnownValues(CaseStatus)]
AfterSalesReasonCode = Annotated[OpenCode, KnownValues(AfterSalesReason)]


def known(vocabulary: type[E], value: str | None) -> E | None:
    """The known member for an open code, or None for a value this reader does not know."""
    if value is None:
        return None
    try:
        return vocabulary(value)
    except ValueError:
        return None
