"""After-sales windows: how long after delivery each demand may be made (售后时效).

Defaults follow Chinese consumer law and common marketplace rules: goods bought online may be
returned within 7 days of receipt without a reason (PRC Consumer Protection Law, Art. 25);
with a quality problem a return or refund is accepted for 15 days, an exchange or reship for
15 days, and a repair for the warranty (a year). Demands that do not act on the goods
(apology, explanation, compensation) have no window: every complaint is heard.

A request is rejected only when it asks for nothing but after-sales and every one of its
after-sales demands is past its window; when only some are, the complaint proceeds and the
decision records which demands are out of time.
"""

from dataclasses import dataclass
from datetime import datetime

from intake_service.domain.facts import ComplaintFacts
from shared.events.vocabulary import AfterSalesReason, DemandType

SECONDS_PER_DAY = 86400
WINDOW_EXPIRED_CODE = "after_sales_window_expired"
# Where a customer can still turn once the shop's after-sales window has closed.
WINDOW_ALTERNATIVE = (
    "the manufacturer's warranty service for defects, or the national consumer complaint "
    "platform 12315 (全国12315平台) for a dispute with the merchant"
)


@dataclass(frozen=True)
class AfterSalesWindows:
    """Days after delivery within which each after-sales demand may be made."""

    no_reason_return_days: int = 7
    quality_return_days: int = 15
    exchange_days: int = 15
    warranty_days: int = 365

    def days_for(self, demand: str, *, quality_problem: bool) -> int | None:
        """The window of one demand, or None when it has none."""
        if demand in (DemandType.RETURN, DemandType.REFUND):
            return self.quality_return_days if quality_problem else self.no_reason_return_days
        if demand in (DemandType.EXCHANGE, DemandType.RESHIP):
            return self.exchange_days
        if demand == DemandType.REPAIR:
            return self.warranty_days
        return None


@dataclass(frozen=True)
class ExpiredDemand:
    """A demand made after its window closed."""

    demand: str
    days_since_delivery: int
    window_days: int


@dataclass(frozen=True)
class WindowDecision:
    """The after-sales window check: which demands are out of time, and whether to reject."""

    expired: tuple[ExpiredDemand, ...]
    rejected: bool

    @property
    def reason(self) -> str:
        """Why, in words a customer can read."""
        return "; ".join(
            f"{item.demand} requested {item.days_since_delivery} days after delivery, "
            f"the window is {item.window_days} days"
            for item in self.expired
        )


def check_window(
    facts: ComplaintFacts, windows: AfterSalesWindows, now: datetime
) -> WindowDecision:
    """Checks each after-sales demand against its window from delivery."""
    # Goods never delivered have no delivery to count from: the carrier is asked instead.
    if facts.delivered_at is None or facts.after_sales_reason == AfterSalesReason.NOT_DELIVERED:
        return WindowDecision(expired=(), rejected=False)
    elapsed_days = int((now - facts.delivered_at).total_seconds() // SECONDS_PER_DAY)
    expired = []
    for demand in sorted(facts.after_sales_demands):
        window = windows.days_for(demand, quality_problem=facts.quality_problem)
        if window is not None and elapsed_days > window:
            expired.append(ExpiredDemand(demand, elapsed_days, window))
    only_after_sales = facts.demand_types == facts.after_sales_demands
    rejected = (
        bool(facts.after_sales_demands)
        and only_after_sales
        and len(expired) == len(facts.after_sales_demands)
    )
    return WindowDecision(expired=tuple(expired), rejected=rejected)
