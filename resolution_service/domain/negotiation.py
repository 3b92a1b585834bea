"""Negotiation, mediation, external referral and proof of consent (协商、调解、外部转介、同意凭证).

When the customer rejects an offer, the agent may counter-offer: the compensation rises by
the policy's step towards what the customer asked, never above the agent's ceiling. After
the policy's number of rejected offers (rounds) a supervisor mediates (调解): the mediator
may go to a higher ceiling and make concessions on the goods remedy the policy lists (a
refund, a free return pickup). When mediation fails too, the case is referred to an outside
body (the consumer association 消费者协会, the platform dispute centre, arbitration, a court)
and its outcome is recorded.

Consent is kept as proof: who accepted, when, on which channel, the exact offer as canonical
JSON and its SHA-256, so anyone can later show that what is executed is what was accepted.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from resolution_service.domain.lifecycle import Trigger
from resolution_service.domain.policy import (
    CaseFacts,
    CompensationPolicy,
    Concession,
    NegotiationRules,
    Proposal,
    RuleApplied,
    assemble_proposal,
    load_policy,
)
from resolution_service.domain.remedies import (
    COMPENSATION_KINDS,
    CONCESSION_SOURCES,
    GOODS_KINDS,
    ORIGINAL_PAYMENT_METHOD,
    Party,
    Remedy,
    RemedyKind,
    RemedySource,
    money,
)
from shared.clock import as_utc


class NegotiationRefused(Exception):  # noqa: N818 - a refusal, named as the decision it is
    """A counter-offer the stage's bounds do not allow, or an outcome that does not fit."""


class Stage(StrEnum):
    """Who is making offers: the agent negotiating, or a supervisor mediating."""

    NEGOTIATION = "negotiation"
    MEDIATION = "mediation"


_SOURCE_OF_STAGE = {
    Stage.NEGOTIATION: RemedySource.NEGOTIATION,
    Stage.MEDIATION: RemedySource.MEDIATION,
}
_REFUNDS = frozenset({RemedyKind.REFUND, RemedyKind.RETURN_AND_REFUND})


def coupon_ceiling(stage: Stage, rules: NegotiationRules) -> Decimal:
    """The most compensation an offer may carry at a stage."""
    if stage is Stage.NEGOTIATION:
        return money(rules.agent_coupon_ceiling)
    return money(rules.mediation_coupon_ceiling)


# --- Rounds --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """One offer the customer rejected, and what they asked for instead."""

    round: int
    rejected_at: datetime
    offer_hash: str
    demanded_compensation: Decimal | None
    reason: str


@dataclass(frozen=True)
class Negotiation:
    """The rounds so far: each rejected offer, and whether a supervisor mediated."""

    rejections: tuple[Rejection, ...] = ()
    # How many offers had been rejected when a supervisor took over (None: not yet).
    mediation_after_round: int | None = None

    @property
    def rounds(self) -> int:
        """How many offers the customer rejected."""
        return len(self.rejections)

    @property
    def mediation_held(self) -> bool:
        """True once a supervisor took the negotiation over."""
        return self.mediation_after_round is not None

    @property
    def last_demand(self) -> Decimal | None:
        """The latest compensation amount the customer asked for."""
        for rejection in reversed(self.rejections):
            if rejection.demanded_compensation is not None:
                return rejection.demanded_compensation
        return None

    def may_counter_offer(self, rules: NegotiationRules) -> bool:
        """True while the agent has rounds left."""
        return self.rounds < rules.max_rounds

    def mediation_due(self, rules: NegotiationRules) -> bool:
        """True once the rounds are used and no supervisor has mediated yet."""
        return self.rounds >= rules.max_rounds and not self.mediation_held

    def referral_due(self) -> bool:
        """True once a mediated offer was rejected too."""
        return self.mediation_after_round is not None and self.rounds > self.mediation_after_round

    def stage(self) -> Stage:
        """Who makes the next offer."""
        return Stage.MEDIATION if self.mediation_held else Stage.NEGOTIATION


def record_rejection(
    negotiation: Negotiation,
    proposal: Proposal,
    *,
    at: datetime,
    demanded_compensation: Decimal | None = None,
    reason: str = "",
) -> Negotiation:
    """The negotiation with one more rejected offer."""
    rejection = Rejection(
        round=negotiation.rounds + 1,
        rejected_at=as_utc(at),
        offer_hash=offer_hash(proposal),
        demanded_compensation=money(demanded_compensation)
        if demanded_compensation is not None
        else None,
        reason=reason.strip(),
    )
    return replace(negotiation, rejections=(*negotiation.rejections, rejection))


def start_mediation(negotiation: Negotiation, rules: NegotiationRules) -> Negotiation:
    """The negotiation handed to a supervisor; refused before the rounds are used."""
    if not negotiation.mediation_due(rules):
        raise NegotiationRefused(
            f"mediation follows {rules.max_rounds} rejected offers "
            f"({negotiation.rounds} so far, mediated before: {negotiation.mediation_held})"
        )
    return replace(negotiation, mediation_after_round=negotiation.rounds)


# --- Counter-offers ------------------------------------------------------------------


def suggest_compensation(
    current: Proposal,
    *,
    stage: Stage,
    rules: NegotiationRules,
    demanded: Decimal | None,
) -> Decimal:
    """The next compensation: one step up when negotiating, the ceiling when mediating,
    never above what the customer asked."""
    ceiling = coupon_ceiling(stage, rules)
    if stage is Stage.NEGOTIATION:
        candidates = [current.compensation_value + rules.coupon_step, ceiling]
    else:
        candidates = [ceiling]
    if demanded is not None:
        candidates.append(demanded)
    return money(min(candidates))


def _with_concessions(
    remedies: list[Remedy],
    concessions: Sequence[Concession],
    *,
    stage: Stage,
    order_amount: Decimal,
    currency: str,
    policy: CompensationPolicy,
) -> list[Remedy]:
    source = _SOURCE_OF_STAGE[stage]
    rules = policy.negotiation
    if Concession.REFUND in concessions and not any(r.kind in _REFUNDS for r in remedies):
        # A refund replaces whatever the goods remedy was (a rejection included).
        remedies = [r for r in remedies if r.kind not in GOODS_KINDS]
        remedies.insert(
            0,
            Remedy(
                kind=RemedyKind.REFUND,
                amount=order_amount,
                currency=currency,
                source=source,
                rule_id=f"negotiation.{stage}",
                refund_method=ORIGINAL_PAYMENT_METHOD,
                earliest_business_days=1,
                within_business_days=rules.concession_refund_within_business_days,
            ),
        )
    if Concession.FREE_RETURN_PICKUP in concessions:
        refunds = [r for r in remedies if r.kind in _REFUNDS]
        if not refunds:
            raise NegotiationRefused("a free return pickup goes with a refund")
        picked_up = refunds[0].with_changes(
            kind=RemedyKind.RETURN_AND_REFUND,
            pickup=True,
            return_shipping_paid_by=Party.PLATFORM,
            refund_within_days_of_return=policy.presets.refund_after_return_days,
            within_business_days=None,
            earliest_business_days=None,
        )
        remedies = [picked_up if r is refunds[0] else r for r in remedies]
    return remedies


def counter_offer(
    current: Proposal,
    *,
    facts: CaseFacts,
    stage: Stage,
    approval_limit: Decimal,
    compensation: Decimal | None = None,
    concessions: Sequence[Concession] = (),
    demanded_compensation: Decimal | None = None,
    policy: CompensationPolicy | None = None,
) -> Proposal:
    """The next offer within the stage's bounds: the suggested compensation unless one is
    chosen, plus the concessions a mediator makes; NegotiationRefused when out of bounds."""
    policy = policy or load_policy(current.policy_version)
    rules = policy.negotiation
    demanded = demanded_compensation or facts.demanded_compensation
    ceiling = coupon_ceiling(stage, rules)
    if concessions and stage is not Stage.MEDIATION:
        raise NegotiationRefused("only a supervisor mediating may make concessions")
    not_listed = [c for c in concessions if c not in rules.mediation_concessions]
    if not_listed:
        raise NegotiationRefused(f"the policy allows no {', '.join(not_listed)} in mediation")
    amount = (
        money(compensation)
        if compensation is not None
        else suggest_compensation(current, stage=stage, rules=rules, demanded=demanded)
    )
    if amount > ceiling:
        raise NegotiationRefused(
            f"compensation of {amount} is above the {stage} ceiling of {ceiling}: "
            + ("escalate to mediation" if stage is Stage.NEGOTIATION else "refer externally")
        )
    if amount <= current.compensation_value and not concessions:
        raise NegotiationRefused(
            f"the policy allows no more than {ceiling} at the {stage} stage and "
            f"{current.compensation_value} is already offered: "
            + ("escalate to mediation" if stage is Stage.NEGOTIATION else "refer externally")
        )
    remedies = [r for r in current.remedies if r.kind not in COMPENSATION_KINDS]
    remedies.append(
        Remedy(
            kind=RemedyKind.COUPON,
            amount=amount,
            currency=current.currency,
            source=_SOURCE_OF_STAGE[stage],
            rule_id=f"negotiation.{stage}",
            coupon_threshold=Decimal(0),
            coupon_valid_days=rules.coupon_valid_days,
        )
    )
    remedies = _with_concessions(
        remedies,
        concessions,
        stage=stage,
        order_amount=current.order_amount,
        currency=current.currency,
        policy=policy,
    )
    asked = f"the customer asks for {demanded}" if demanded is not None else "the customer declined"
    made = f"; concessions: {', '.join(concessions)}" if concessions else ""
    step = RuleApplied(
        f"negotiation.{stage}",
        f"{asked}; the {stage} ceiling is {ceiling}",
        f"compensation {current.compensation_value} -> {amount}{made}",
    )
    return assemble_proposal(
        remedies,
        facts=facts,
        policy=policy,
        approval_limit=approval_limit,
        rules_applied=(*current.rules_applied, step),
        caps_applied=current.caps_applied,
    )


def bounds_problems(
    proposal: Proposal, *, stage: Stage, policy: CompensationPolicy
) -> tuple[str, ...]:
    """Why an offer made at `stage` goes beyond the policy's bounds (empty: within them)."""
    problems: list[str] = []
    ceiling = coupon_ceiling(stage, policy.negotiation)
    conceded = money(
        sum(
            (
                r.amount
                for r in proposal.remedies
                if r.kind in COMPENSATION_KINDS and r.source in CONCESSION_SOURCES
            ),
            Decimal(0),
        )
    )
    if conceded > ceiling:
        problems.append(f"compensation of {conceded} is above the {stage} ceiling of {ceiling}")
    if stage is Stage.NEGOTIATION and any(
        r.source is RemedySource.MEDIATION for r in proposal.remedies
    ):
        problems.append("mediation remedies are a supervisor's, in mediation")
    return tuple(problems)


# --- Proof of consent ----------------------------------------------------------------


def canonical_offer(proposal: Proposal) -> str:
    """Exactly what was offered, as canonical JSON (sorted keys, no spaces, amounts as text)."""
    return json.dumps(proposal.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def offer_hash(proposal: Proposal) -> str:
    """The SHA-256 (hex) of the canonical offer."""
    return hashlib.sha256(canonical_offer(proposal).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ConsentRecord:
    """Proof of consent (同意凭证): who accepted what, when, and where."""

    customer_id: str
    consented_at: datetime
    channel: str
    offer: str
    offer_hash: str
    summary: tuple[str, ...]


def record_consent(
    proposal: Proposal, *, customer_id: str, at: datetime, channel: str
) -> ConsentRecord:
    """The proof that `customer_id` accepted exactly this offer at `at` on `channel`.

    Whether the offer could be put to the customer (approved if it needed approval) is the
    lifecycle's to say: only a case awaiting the customer takes an acceptance.
    """
    return ConsentRecord(
        customer_id=customer_id,
        consented_at=as_utc(at),
        channel=channel,
        offer=canonical_offer(proposal),
        offer_hash=offer_hash(proposal),
        summary=proposal.describe(),
    )


def consent_matches(record: ConsentRecord, proposal: Proposal) -> bool:
    """True when the record is intact and names exactly this offer."""
    intact = hashlib.sha256(record.offer.encode("utf-8")).hexdigest() == record.offer_hash
    return intact and record.offer_hash == offer_hash(proposal)


# --- External referral ---------------------------------------------------------------


class ReferralBody(StrEnum):
    """Outside bodies a dispute can be referred to."""

    CONSUMER_ASSOCIATION = "consumer_association"
    PLATFORM_DISPUTE_CENTRE = "platform_dispute_centre"
    ARBITRATION = "arbitration"
    COURT = "court"


REFERRAL_LABELS: Mapping[ReferralBody, tuple[str, str]] = MappingProxyType(
    {
        ReferralBody.CONSUMER_ASSOCIATION: ("消费者协会", "consumer association"),
        ReferralBody.PLATFORM_DISPUTE_CENTRE: ("平台纠纷调解中心", "platform dispute centre"),
        ReferralBody.ARBITRATION: ("仲裁", "arbitration"),
        ReferralBody.COURT: ("诉讼", "court"),
    }
)


class OutcomeKind(StrEnum):
    """What the outside body decided."""

    SETTLED = "settled"
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class ExternalOutcome:
    """The outside body's decision: a settlement with its remedies, or a dismissal."""

    kind: OutcomeKind
    recorded_at: datetime
    summary: str
    remedies: tuple[Remedy, ...] = ()

    @property
    def trigger(self) -> Trigger:
        """The lifecycle trigger that carries this outcome."""
        if self.kind is OutcomeKind.SETTLED:
            return Trigger.RECORD_EXTERNAL_SETTLEMENT
        return Trigger.RECORD_EXTERNAL_DISMISSAL


@dataclass(frozen=True)
class Referral:
    """A case referred to an outside body, and its outcome once known."""

    body: ReferralBody
    referred_at: datetime
    reference: str | None = None
    outcome: ExternalOutcome | None = None


def refer(body: ReferralBody, *, at: datetime, reference: str | None = None) -> Referral:
    """A referral to an outside body (its case reference, when it gives one)."""
    return Referral(body=body, referred_at=as_utc(at), reference=reference)


def record_outcome(referral: Referral, outcome: ExternalOutcome) -> Referral:
    """The referral with the outside body's outcome; refused if it does not fit."""
    if referral.outcome is not None:
        raise NegotiationRefused("this referral's outcome is already recorded")
    if as_utc(outcome.recorded_at) < referral.referred_at:
        raise NegotiationRefused("the outcome is dated before the referral")
    if not outcome.summary.strip():
        raise NegotiationRefused("an outcome states what the body decided")
    if outcome.kind is OutcomeKind.SETTLED and not outcome.remedies:
        raise NegotiationRefused("a settlement lists the remedies agreed")
    remedies = tuple(r.with_changes(source=RemedySource.EXTERNAL) for r in outcome.remedies)
    return replace(referral, outcome=replace(outcome, remedies=remedies))
