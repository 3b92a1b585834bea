"""Completeness: what a complaint must state before anyone can work on it (信息完整性).

Each requirement says when it applies, how to tell it is met, and why it is asked, so the
customer is asked for ALL missing items in one message (never one at a time).
"""

from collections.abc import Callable
from dataclasses import dataclass

from intake_service.domain.facts import ComplaintFacts
from shared.events.vocabulary import AfterSalesReason, ComplaintTarget, DemandType

# What a complaint is about decides whether the order matters.
ORDER_TARGETS = frozenset(
    {ComplaintTarget.PRODUCT, ComplaintTarget.LOGISTICS, ComplaintTarget.MERCHANT}
)
WHEN_TARGETS = frozenset({ComplaintTarget.STAFF, ComplaintTarget.SERVICE, ComplaintTarget.FACILITY})
# Demands whose window counts from delivery (a reship or refund for lost goods does not).
DELIVERY_DATED_DEMANDS = frozenset({DemandType.RETURN, DemandType.EXCHANGE, DemandType.REPAIR})


@dataclass(frozen=True)
class Requirement:
    """One item a complaint must carry when `applies`, met when `present`."""

    field: str
    reason: str
    applies: Callable[[ComplaintFacts], bool]
    present: Callable[[ComplaintFacts], bool]


@dataclass(frozen=True)
class Missing:
    """An item the customer still has to supply, and why it is needed."""

    field: str
    reason: str


def _shows_a_problem_with_the_goods(facts: ComplaintFacts) -> bool:
    return facts.quality_problem and facts.after_sales_reason != AfterSalesReason.NOT_DELIVERED


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        field="order.number",
        reason="the order number, so the merchant and the carrier can check it",
        applies=lambda f: f.target in ORDER_TARGETS or bool(f.after_sales_demands),
        present=lambda f: bool(f.order_number),
    ),
    Requirement(
        field="order.items",
        reason="which item of the order the complaint is about",
        applies=lambda f: f.target == ComplaintTarget.PRODUCT,
        present=lambda f: f.order_item_count > 0,
    ),
    Requirement(
        field="order.delivered_at",
        reason="when the order was delivered: after-sales windows count from that day",
        applies=lambda f: (
            bool(f.demand_types & DELIVERY_DATED_DEMANDS)
            and f.after_sales_reason != AfterSalesReason.NOT_DELIVERED
        ),
        present=lambda f: f.delivered_at is not None,
    ),
    Requirement(
        field="evidence_ids",
        reason="a photo or video that shows the problem with the goods",
        applies=_shows_a_problem_with_the_goods,
        present=lambda f: f.evidence_count > 0,
    ),
    Requirement(
        field="demands.compensation.amount",
        reason="how much compensation is asked for",
        applies=lambda f: DemandType.COMPENSATION in f.demand_types,
        present=lambda f: all(
            d.amount is not None for d in f.demands if d.type == DemandType.COMPENSATION
        ),
    ),
    Requirement(
        field="occurred_at",
        reason="when it happened, so the staff on duty and records can be checked",
        applies=lambda f: f.target in WHEN_TARGETS,
        present=lambda f: f.occurred_at is not None,
    ),
)


def missing_items(facts: ComplaintFacts) -> tuple[Missing, ...]:
    """Every item the complaint still lacks, all at once, in a stable order."""
    return tuple(
        Missing(requirement.field, requirement.reason)
        for requirement in REQUIREMENTS
        if requirement.applies(facts) and not requirement.present(facts)
    )
