"""Priority (紧急/重要/一般): every rule that can raise a complaint, each with its reason.

A complaint starts general and only ever goes up: the decision is the highest level any rule
reaches, and every rule that fired is listed. No rule lowers a priority, so politeness ("不
着急", "no rush", "sorry to bother you") can never talk down an injury or a threat.

Rules, in the order their reasons are listed:
- text signals from the lexicon (`triage_service/signals.json`): personal injury, safety
  hazards, health risks, threats to go to regulators, media, lawyers or courts and group
  complaints are urgent; loyalty and brand risk and a stated repeat complaint are important;
- the tag's floor from the taxonomy (an injury tag is urgent, an expired product important);
- money: the largest demanded amount, the order amount or a sum the text mentions, at or
  above the threshold, is urgent;
- counts the caller supplies: complaints on the same merchant or SKU in the window (at or
  above K, urgent) and the customer's earlier complaints (at or above the threshold,
  important).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from shared.events.vocabulary import Priority
from triage_service.domain.signals import SignalReader, default_reader
from triage_service.domain.taxonomy import Taxonomy, load_taxonomy

RANK: dict[Priority, int] = {Priority.GENERAL: 0, Priority.IMPORTANT: 1, Priority.URGENT: 2}


@dataclass(frozen=True)
class PriorityRules:
    """The numbers the rules compare against (the rules themselves are fixed here)."""

    # "Large sums" (DOMAIN.md §2); the same default as the service's large_sum_threshold.
    large_sum_threshold: Decimal = Decimal("5000")
    # K complaints on one merchant or SKU within the caller's window make a group complaint.
    group_threshold: int = 5
    # A customer with this many earlier complaints is a repeat complainant.
    repeat_threshold: int = 2


@dataclass(frozen=True)
class PriorityDecision:
    """A priority and every reason that raised it (empty reasons: general by default)."""

    priority: Priority
    reasons: tuple[str, ...]


def highest(priorities: Iterable[Priority]) -> Priority:
    """The most pressing of some priorities; general when there are none."""
    return max(priorities, key=RANK.__getitem__, default=Priority.GENERAL)


def assess_priority(
    text: str,
    *,
    subcategory: str | None = None,
    demanded_amounts: Iterable[Decimal] = (),
    order_amount: Decimal | None = None,
    similar_complaints: int = 0,
    previous_complaints: int = 0,
    rules: PriorityRules | None = None,
    reader: SignalReader | None = None,
    taxonomy: Taxonomy | None = None,
) -> PriorityDecision:
    """Decides urgent / important / general for one complaint, with the reason for each raise."""
    rules = rules or PriorityRules()
    reader = reader or default_reader()
    taxonomy = taxonomy or load_taxonomy()
    raised: list[tuple[Priority, str]] = []

    for hit in reader.read(text):
        signal = reader.lexicon.signal(hit.code)
        if signal.priority is not None:
            raised.append((signal.priority, f"{hit.code}: {signal.label_en} ({hit.evidence})"))

    if subcategory is not None and subcategory in taxonomy.subcategory_codes:
        floor = taxonomy.subcategory(subcategory).priority_floor
        if floor is not None:
            raised.append((floor, f"subcategory_floor: {subcategory} is at least {floor}"))

    amounts = [*demanded_amounts, *reader.amounts(text)]
    if order_amount is not None:
        amounts.append(order_amount)
    largest = max(amounts, default=None)
    if largest is not None and largest >= rules.large_sum_threshold:
        raised.append(
            (Priority.URGENT, f"large_sum: {largest} at or above {rules.large_sum_threshold}")
        )

    if similar_complaints >= rules.group_threshold:
        raised.append(
            (
                Priority.URGENT,
                f"group_complaint: {similar_complaints} complaints on the same merchant or "
                f"product (threshold {rules.group_threshold})",
            )
        )
    if previous_complaints >= rules.repeat_threshold:
        raised.append(
            (
                Priority.IMPORTANT,
                f"repeat_complainant: {previous_complaints} earlier complaints "
                f"(threshold {rules.repeat_threshold})",
            )
        )

    priority = highest(level for level, _ in raised)
    # Most pressing reasons first, so a reader sees why it is urgent before why it is important.
    ordered = sorted(raised, key=lambda pair: -RANK[pair[0]])
    return PriorityDecision(priority=priority, reasons=tuple(reason for _, reason in ordered))
