"""Responsibility and the liability ledger (责任判定与赔付台账): who bears each remedy's cost.

Responsibility starts from triage's hypothesis and is decided by what the investigation
learns, each step with its reason: the merchant's answer to verification (accepting, or
staying silent past the deadline, puts the case on the merchant), then the agent's own
finding, which has the last word. The decision then says who pays for every remedy:

| responsibility | goods (refund, reship...) | compensation (coupon, credit) | return shipping |
| --- | --- | --- | --- |
| merchant | merchant | merchant | merchant |
| logistics | carrier | carrier | carrier |
| customer | merchant (takes the goods back) | platform | customer |
| third_party | platform (recovers it outside the case) | platform | platform |
| force_majeure | merchant (the price goes back with the goods) | platform | platform |
| undetermined | platform (pays first, 先行赔付) | platform | platform |

Concessions beyond the policy's standard (goodwill, negotiation, mediation) are the
platform's choice, so the platform bears them whatever the responsibility.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from resolution_service.domain.remedies import (
    COMPENSATION_KINDS,
    CONCESSION_SOURCES,
    GESTURE_KINDS,
    Party,
    Remedy,
    RemedyKind,
    money,
)
from resolution_service.domain.verification import VerificationOutcome, VerificationResult
from shared.events.vocabulary import OpenCode


class Responsibility(StrEnum):
    """Who answers for the complaint (责任方): triage's words, decided here."""

    MERCHANT = "merchant"
    LOGISTICS = "logistics"
    CUSTOMER = "customer"
    THIRD_PARTY = "third_party"
    FORCE_MAJEURE = "force_majeure"
    UNDETERMINED = "undetermined"


class CostKind(StrEnum):
    """What a ledger entry charges for."""

    GOODS = "goods"
    COMPENSATION = "compensation"
    RETURN_SHIPPING = "return_shipping"


_Liability = Mapping[CostKind, tuple[Party, str]]

LIABILITY: Mapping[Responsibility, _Liability] = MappingProxyType(
    {
        Responsibility.MERCHANT: {
            CostKind.GOODS: (Party.MERCHANT, "the merchant is responsible"),
            CostKind.COMPENSATION: (Party.MERCHANT, "the merchant is responsible"),
            CostKind.RETURN_SHIPPING: (Party.MERCHANT, "the merchant is responsible"),
        },
        Responsibility.LOGISTICS: {
            CostKind.GOODS: (Party.CARRIER, "the carrier is responsible"),
            CostKind.COMPENSATION: (Party.CARRIER, "the carrier is responsible"),
            CostKind.RETURN_SHIPPING: (Party.CARRIER, "the carrier is responsible"),
        },
        Responsibility.CUSTOMER: {
            CostKind.GOODS: (Party.MERCHANT, "the merchant refunds the goods it takes back"),
            CostKind.COMPENSATION: (Party.PLATFORM, "nobody else owes compensation"),
            CostKind.RETURN_SHIPPING: (Party.CUSTOMER, "the customer's own choice"),
        },
        Responsibility.THIRD_PARTY: {
            CostKind.GOODS: (Party.PLATFORM, "the platform pays and recovers from the third party"),
            CostKind.COMPENSATION: (
                Party.PLATFORM,
                "the platform pays and recovers from the third party",
            ),
            CostKind.RETURN_SHIPPING: (
                Party.PLATFORM,
                "the platform pays and recovers from the third party",
            ),
        },
        Responsibility.FORCE_MAJEURE: {
            CostKind.GOODS: (
                Party.MERCHANT,
                "nobody is at fault: the price goes back with the goods",
            ),
            CostKind.COMPENSATION: (Party.PLATFORM, "nobody is at fault: a platform gesture"),
            CostKind.RETURN_SHIPPING: (Party.PLATFORM, "nobody is at fault: a platform gesture"),
        },
        Responsibility.UNDETERMINED: {
            CostKind.GOODS: (
                Party.PLATFORM,
                "responsibility undetermined: the platform pays first",
            ),
            CostKind.COMPENSATION: (
                Party.PLATFORM,
                "responsibility undetermined: the platform pays first",
            ),
            CostKind.RETURN_SHIPPING: (
                Party.PLATFORM,
                "responsibility undetermined: the platform pays first",
            ),
        },
    }
)
CONCESSION_REASON = "a concession beyond the policy's standard is the platform's"


@dataclass(frozen=True)
class Finding:
    """An agent's conclusion from the investigation."""

    responsibility: Responsibility
    reason: str
    by: str


@dataclass(frozen=True)
class ResponsibilityDecision:
    """Who answers for the complaint, how that was reached, and whether it is settled."""

    responsibility: Responsibility
    hypothesis: Responsibility
    reasons: tuple[str, ...]
    # A hypothesis alone is not a decision: verification or an agent's finding settles it.
    decided: bool


def hypothesis_from_triage(code: str | None) -> Responsibility:
    """Triage's hypothesis as a known value; a code this version does not know: undetermined."""
    try:
        return Responsibility(code or Responsibility.UNDETERMINED)
    except ValueError:
        return Responsibility.UNDETERMINED


def decide_responsibility(
    hypothesis: OpenCode | None,
    *,
    verification: VerificationOutcome | None = None,
    finding: Finding | None = None,
) -> ResponsibilityDecision:
    """Responsibility from triage's hypothesis, the merchant's verification and the agent."""
    start = hypothesis_from_triage(hypothesis)
    responsibility = start
    reasons = [f"triage's hypothesis: {start}"]
    decided = False
    if verification is not None:
        reasons.append(verification.reason)
        if verification.proceeds_against_merchant:
            responsibility = Responsibility.MERCHANT
            decided = True
        elif verification.result is VerificationResult.DISPUTED:
            reasons.append("the agent weighs the merchant's evidence")
    if finding is not None:
        responsibility = finding.responsibility
        reasons.append(f"{finding.by} found {finding.responsibility}: {finding.reason}")
        decided = True
    return ResponsibilityDecision(
        responsibility=responsibility, hypothesis=start, reasons=tuple(reasons), decided=decided
    )


def cost_kind(remedy: Remedy) -> CostKind | None:
    """Which cost a remedy's amount is; None when it costs nothing (apology, rejection)."""
    if remedy.kind in GESTURE_KINDS or remedy.kind is RemedyKind.REJECTION:
        return None
    return CostKind.COMPENSATION if remedy.kind in COMPENSATION_KINDS else CostKind.GOODS


def liable_party(responsibility: Responsibility, remedy: Remedy) -> tuple[Party, str]:
    """Who bears a remedy's amount, and why."""
    kind = cost_kind(remedy) or CostKind.GOODS
    if remedy.source in CONCESSION_SOURCES and kind is CostKind.COMPENSATION:
        return Party.PLATFORM, CONCESSION_REASON
    return LIABILITY[responsibility][kind]


def return_shipping_payer(responsibility: Responsibility) -> tuple[Party, str]:
    """Who pays for sending goods back, when no rule or concession says otherwise."""
    return LIABILITY[responsibility][CostKind.RETURN_SHIPPING]


def assign_payers(remedies: Iterable[Remedy], responsibility: Responsibility) -> tuple[Remedy, ...]:
    """The remedies with `paid_by` (and return shipping's payer, if unset) filled in."""
    assigned = []
    for remedy in remedies:
        changes: dict[str, object] = {}
        if cost_kind(remedy) is not None:
            changes["paid_by"] = liable_party(responsibility, remedy)[0]
        if remedy.kind is RemedyKind.RETURN_AND_REFUND and remedy.return_shipping_paid_by is None:
            changes["return_shipping_paid_by"] = return_shipping_payer(responsibility)[0]
        assigned.append(remedy.with_changes(**changes) if changes else remedy)
    return tuple(assigned)


@dataclass(frozen=True)
class LedgerEntry:
    """One cost charged to one party (台账条目)."""

    party: Party
    # The merchant's or carrier's id; None for the platform and the customer.
    party_id: str | None
    amount: Decimal
    currency: str
    remedy: RemedyKind
    cost: CostKind
    reason: str


def ledger_entries(
    remedies: Iterable[Remedy],
    decision: ResponsibilityDecision,
    *,
    merchant_id: str,
    carrier_id: str | None = None,
    return_shipping_cost: Decimal = Decimal(0),
) -> tuple[LedgerEntry, ...]:
    """One entry per cost of the remedies; return shipping is charged once its cost is known."""
    ids = {Party.MERCHANT: merchant_id, Party.CARRIER: carrier_id}
    responsibility = decision.responsibility
    entries: list[LedgerEntry] = []
    for remedy in remedies:
        kind = cost_kind(remedy)
        if kind is not None and remedy.amount > 0:
            party, reason = liable_party(responsibility, remedy)
            entries.append(
                LedgerEntry(
                    party, ids.get(party), remedy.amount, remedy.currency, remedy.kind, kind, reason
                )
            )
        if remedy.kind is RemedyKind.RETURN_AND_REFUND and return_shipping_cost > 0:
            default_party, reason = return_shipping_payer(responsibility)
            party = remedy.return_shipping_paid_by or default_party
            if party is not default_party:
                reason = "as the remedy agreed"
            entries.append(
                LedgerEntry(
                    party,
                    ids.get(party),
                    money(return_shipping_cost),
                    remedy.currency,
                    remedy.kind,
                    CostKind.RETURN_SHIPPING,
                    reason,
                )
            )
    return tuple(entries)


def totals_by_party_id(
    entries: Iterable[LedgerEntry], party: Party
) -> dict[tuple[str, str], Decimal]:
    """What each merchant (or carrier) owes, per (party id, currency)."""
    sums: defaultdict[tuple[str, str], Decimal] = defaultdict(lambda: Decimal("0.00"))
    for entry in entries:
        if entry.party is party and entry.party_id is not None:
            sums[(entry.party_id, entry.currency)] += entry.amount
    return dict(sums)


def totals_per_merchant(entries: Iterable[LedgerEntry]) -> dict[tuple[str, str], Decimal]:
    """What each merchant bears, per (merchant id, currency)."""
    return totals_by_party_id(entries, Party.MERCHANT)


def totals_per_carrier(entries: Iterable[LedgerEntry]) -> dict[tuple[str, str], Decimal]:
    """What each carrier bears, per (carrier id, currency)."""
    return totals_by_party_id(entries, Party.CARRIER)


def totals_per_party(entries: Iterable[LedgerEntry]) -> dict[tuple[Party, str], Decimal]:
    """What each kind of party bears in all, per currency."""
    sums: defaultdict[tuple[Party, str], Decimal] = defaultdict(lambda: Decimal("0.00"))
    for entry in entries:
        sums[(entry.party, entry.currency)] += entry.amount
    return dict(sums)
