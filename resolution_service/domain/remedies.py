"""Remedies (解决方案): what a case gives the customer, and the parties that can bear a cost.

A remedy is a value: its kind, the money or goods value it carries, its timing promise and,
once liability is decided, who bears it. Proposals, consent records, ledger entries and
execution tasks are all built from these values, so a remedy is described the same way
everywhere.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

CENT = Decimal("0.01")
ORIGINAL_PAYMENT_METHOD = "original_payment_method"


def money(value: Decimal | int | str) -> Decimal:
    """An amount rounded to the cent, half up (10% of 199.95 is 20.00)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


class RemedyKind(StrEnum):
    """What a remedy does for the customer."""

    REFUND = "refund"
    RETURN_AND_REFUND = "return_and_refund"
    EXCHANGE = "exchange"
    REPAIR = "repair"
    RESHIP = "reship"
    COUPON = "coupon"
    BALANCE_CREDIT = "balance_credit"
    APOLOGY = "apology"
    EXPLANATION = "explanation"
    REJECTION = "rejection"


# Remedies that act on the goods or their price: a proposal holds at most one of them.
GOODS_KINDS = frozenset(
    {
        RemedyKind.REFUND,
        RemedyKind.RETURN_AND_REFUND,
        RemedyKind.EXCHANGE,
        RemedyKind.REPAIR,
        RemedyKind.RESHIP,
        RemedyKind.REJECTION,
    }
)
# Money on top of the goods remedy (补偿).
COMPENSATION_KINDS = frozenset({RemedyKind.COUPON, RemedyKind.BALANCE_CREDIT})
GESTURE_KINDS = frozenset({RemedyKind.APOLOGY, RemedyKind.EXPLANATION})
# Remedies whose amount is money the customer receives: what approval limits compare.
MONEY_KINDS = frozenset(
    {RemedyKind.REFUND, RemedyKind.RETURN_AND_REFUND, RemedyKind.COUPON, RemedyKind.BALANCE_CREDIT}
)


class Party(StrEnum):
    """Who can bear the cost of a remedy."""

    MERCHANT = "merchant"
    CARRIER = "carrier"
    PLATFORM = "platform"
    CUSTOMER = "customer"


class RemedySource(StrEnum):
    """Where a remedy came from: a policy rule, or a concession beyond the standard."""

    POLICY = "policy"
    GOODWILL = "goodwill"
    NEGOTIATION = "negotiation"
    MEDIATION = "mediation"
    EXTERNAL = "external"


# Concessions beyond the policy's standard: the platform chose to give them.
CONCESSION_SOURCES = frozenset(
    {RemedySource.GOODWILL, RemedySource.NEGOTIATION, RemedySource.MEDIATION}
)


@dataclass(frozen=True)
class Remedy:
    """One remedy of a proposal; fields a kind does not use stay None (or False)."""

    kind: RemedyKind
    # Money the customer receives (refund, coupon face value, credit) or the value of the goods
    # replaced (reship, exchange, repair); zero for apology, explanation and rejection.
    amount: Decimal = Decimal("0.00")
    currency: str = "CNY"
    source: RemedySource = RemedySource.POLICY
    rule_id: str | None = None
    # Who bears the cost: set from the responsibility decision (ledger.liable_party).
    paid_by: Party | None = None
    partial: bool = False
    refund_method: str | None = None
    earliest_business_days: int | None = None
    within_business_days: int | None = None
    within_hours: int | None = None
    refund_within_days_of_return: int | None = None
    return_shipping_paid_by: Party | None = None
    pickup: bool = False
    coupon_threshold: Decimal | None = None
    coupon_valid_days: int | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError(f"{self.kind} amount must not be negative")
        object.__setattr__(self, "amount", money(self.amount))

    def with_changes(self, **changes: Any) -> "Remedy":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def describe(self) -> str:
        """One line a person can read (agents' screens, consent records, reasons)."""
        amount = f"{self.amount} {self.currency}"
        if self.kind in (RemedyKind.REFUND, RemedyKind.RETURN_AND_REFUND):
            what = "partial refund" if self.partial else "full refund"
            text = f"{what} of {amount}"
            if self.kind is RemedyKind.RETURN_AND_REFUND:
                payer = self.return_shipping_paid_by.value if self.return_shipping_paid_by else "?"
                pickup = "free pickup, " if self.pickup else ""
                text = f"return ({pickup}shipping paid by {payer}) and {text}"
            if self.refund_method:
                text += f" to the {self.refund_method.replace('_', ' ')}"
            if self.within_business_days is not None:
                earliest = self.earliest_business_days
                span = (
                    f"{earliest}-{self.within_business_days}"
                    if earliest
                    else f"{self.within_business_days}"
                )
                text += f" within {span} working days"
            if self.refund_within_days_of_return is not None:
                text += f", {self.refund_within_days_of_return} days after the return arrives"
            return text
        if self.kind is RemedyKind.COUPON:
            threshold = (
                "no-threshold"
                if not self.coupon_threshold
                else f"spend {money(self.coupon_threshold)}"
            )
            return f"{threshold} coupon of {amount}, valid {self.coupon_valid_days} days"
        if self.kind is RemedyKind.BALANCE_CREDIT:
            return f"balance credit of {amount}"
        if self.kind in (RemedyKind.RESHIP, RemedyKind.EXCHANGE, RemedyKind.REPAIR):
            within = f" within {self.within_hours} h" if self.within_hours else ""
            return f"{self.kind.value}{within} (goods worth {amount})"
        return f"{self.kind.value}: {self.text}" if self.text else self.kind.value

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form with amounts as strings, so hashes of it are exact."""
        data: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Decimal):
                value = str(money(value))
            elif isinstance(value, StrEnum):
                value = value.value
            data[name] = value
        return data


def total(remedies: Iterable[Remedy], kinds: frozenset[RemedyKind] = MONEY_KINDS) -> Decimal:
    """The sum of the amounts of the remedies of some kinds (money to the customer by default)."""
    return money(sum((r.amount for r in remedies if r.kind in kinds), Decimal(0)))
