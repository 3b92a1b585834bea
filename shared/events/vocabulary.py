"""The complaint domain's shared words, as used in event contracts (see DOMAIN.md)."""

from enum import StrEnum


class Channel(StrEnum):
    """Where a complaint came in (受理渠道)."""

    APP = "app"
    WEB = "web"
    CHAT = "chat"
    HOTLINE = "hotline"
    EMAIL = "email"
    SOCIAL = "social"
    STORE_DESK = "store_desk"
    SUGGESTION_BOX = "suggestion_box"


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


class Category(StrEnum):
    """First-level category tags (标签体系)."""

    PRODUCT_QUALITY = "product_quality"
    LOGISTICS = "logistics"
    AFTER_SALES = "after_sales"
    SERVICE_ATTITUDE = "service_attitude"
    SYSTEM_FAILURE = "system_failure"
    TRANSACTION_DISPUTE = "transaction_dispute"
    INFORMATION = "information"
    FACILITIES = "facilities"
    SAFETY = "safety"
    UNCLASSIFIED = "unclassified"


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
