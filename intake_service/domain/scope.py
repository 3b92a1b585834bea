"""Scope: requests the platform's after-sales policy does not cover, declined politely.

Unlike a late request (see windows), these are out of policy whenever they come:
- a no-reason return of goods the law lets the shop exclude (custom-made, fresh food,
  digital downloads, opened software) when ordered that way;
- a repair without a quality problem: the warranty covers defects, not wear or accidents;
- compensation above a multiple of the order's amount: beyond what the policy (or the
  law's punitive damages) could grant, so it is for a court or the regulator's mediation.
Each decision comes with the lawful alternative channel, and the complaint is still recorded.
"""

from dataclasses import dataclass
from decimal import Decimal

from intake_service.domain.facts import ComplaintFacts
from shared.events.vocabulary import DemandType


@dataclass(frozen=True)
class ScopePolicy:
    """The numbers and words of the scope rules."""

    # Compensation above this multiple of the order amount is declined as out of policy.
    max_compensation_to_order_ratio: Decimal = Decimal("10")


@dataclass(frozen=True)
class ScopeDecision:
    """Why a request is out of scope, and where the customer can turn instead."""

    code: str
    reason: str
    alternative: str


def check_scope(facts: ComplaintFacts, policy: ScopePolicy) -> ScopeDecision | None:
    """The first scope rule the request breaks, or None when it is in scope."""
    returns = facts.demand_types & {DemandType.RETURN, DemandType.REFUND}
    if returns and not facts.quality_problem and not facts.all_items_returnable_without_reason:
        return ScopeDecision(
            code="not_returnable_without_reason",
            reason="the item is excluded from no-reason returns (custom-made, perishable, "
            "digital or opened goods) and no quality problem was reported",
            alternative="if the item is faulty, submit again with the quality problem and "
            "a photo; otherwise the merchant may agree a return directly",
        )
    if DemandType.REPAIR in facts.demand_types and not facts.quality_problem:
        return ScopeDecision(
            code="repair_without_quality_problem",
            reason="the warranty covers defects; a repair without a quality problem is a paid "
            "service",
            alternative="the manufacturer's or merchant's paid repair service",
        )
    compensation = sum(
        (d.amount for d in facts.demands if d.type == DemandType.COMPENSATION and d.amount),
        Decimal(0),
    )
    if (
        facts.order_amount is not None
        and facts.order_amount > 0
        and compensation > facts.order_amount * policy.max_compensation_to_order_ratio
    ):
        return ScopeDecision(
            code="compensation_beyond_policy",
            reason=f"compensation of {compensation} exceeds "
            f"{policy.max_compensation_to_order_ratio} times the order amount "
            f"({facts.order_amount}), beyond what the platform's policy can grant",
            alternative="the consumer association's mediation (12315) or a court",
        )
    return None
