"""What the intake rules look at: the facts of one complaint, free of HTTP and SQL."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from shared.events.vocabulary import AfterSalesReason, DemandType

# Demands that ask the merchant to act on the goods: each has a window after delivery.
AFTER_SALES_DEMANDS = frozenset(
    {
        DemandType.REFUND,
        DemandType.RETURN,
        DemandType.EXCHANGE,
        DemandType.REPAIR,
        DemandType.RESHIP,
    }
)
# Reasons that say the goods or their delivery were at fault, not the customer's mind.
QUALITY_REASONS = frozenset(
    {
        AfterSalesReason.QUALITY_ISSUE,
        AfterSalesReason.DAMAGED,
        AfterSalesReason.NOT_AS_DESCRIBED,
        AfterSalesReason.WRONG_ITEM,
        AfterSalesReason.MISSING_PARTS,
        AfterSalesReason.EXPIRED,
        AfterSalesReason.NOT_DELIVERED,
    }
)


@dataclass(frozen=True)
class DemandFact:
    """One demand: its type and the amount where the customer stated one."""

    type: str
    amount: Decimal | None = None


@dataclass(frozen=True)
class ComplaintFacts:
    """The facts of a complaint the initial checks decide on."""

    target: str
    demands: tuple[DemandFact, ...] = ()
    after_sales_reason: str | None = None
    order_number: str | None = None
    order_amount: Decimal | None = None
    order_item_count: int = 0
    # False when some ordered item is excluded from no-reason returns (custom-made, fresh...).
    all_items_returnable_without_reason: bool = True
    delivered_at: datetime | None = None
    occurred_at: datetime | None = None
    evidence_count: int = 0

    @property
    def demand_types(self) -> frozenset[str]:
        """The kinds of demand made."""
        return frozenset(demand.type for demand in self.demands)

    @property
    def after_sales_demands(self) -> frozenset[str]:
        """The demands that act on the goods (refund, return, exchange, repair, reship)."""
        return self.demand_types & AFTER_SALES_DEMANDS

    @property
    def quality_problem(self) -> bool:
        """Whether the customer says the goods or their delivery were at fault."""
        return self.after_sales_reason in QUALITY_REASONS
