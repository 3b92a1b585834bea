"""Negotiation rounds, counter-offers within bounds, mediation, referral and proof of consent."""

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolution_service.domain.ledger import Responsibility
from resolution_service.domain.lifecycle import Trigger
from resolution_service.domain.negotiation import (
    REFERRAL_LABELS,
    ExternalOutcome,
    Negotiation,
    NegotiationRefused,
    OutcomeKind,
    ReferralBody,
    Stage,
    bounds_problems,
    canonical_offer,
    consent_matches,
    counter_offer,
    offer_hash,
    record_consent,
    record_outcome,
    record_rejection,
    refer,
    start_mediation,
    suggest_compensation,
)
from resolution_service.domain.policy import (
    CaseFacts,
    Concession,
    Goodwill,
    Proposal,
    evaluate,
    load_policy,
)
from resolution_service.domain.remedies import Party, Remedy, RemedyKind, RemedySource

AT = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)
AGENT_LIMIT = Decimal(500)
SUPERVISOR_LIMIT = Decimal(3000)
RULES = load_policy().negotiation
# A promised gift never came: no standard remedy, so the agent offered a 100 goodwill coupon.
FACTS = CaseFacts(
    "misleading_info",
    "unkept_promise",
    Responsibility.MERCHANT,
    Decimal("399"),
    demands={"compensation": Decimal(500)},
)


def first_offer() -> Proposal:
    goodwill = Goodwill(RemedyKind.COUPON, "the promised gift was not sent", Decimal(100))
    return evaluate(FACTS, approval_limit=AGENT_LIMIT, goodwill=(goodwill,))


# --- Rounds --------------------------------------------------------------------------


def test_rounds_count_rejected_offers_until_mediation_is_due():
    offer = first_offer()
    negotiation = record_rejection(Negotiation(), offer, at=AT, demanded_compensation=Decimal(500))
    assert (negotiation.rounds, negotiation.last_demand) == (1, Decimal("500.00"))
    assert negotiation.may_counter_offer(RULES)
    assert not negotiation.mediation_due(RULES)
    with pytest.raises(NegotiationRefused, match="mediation follows 2 rejected offers"):
        start_mediation(negotiation, RULES)
    negotiation = record_rejection(negotiation, offer, at=AT, reason="still too little")
    assert negotiation.last_demand == Decimal("500.00")
    assert negotiation.mediation_due(RULES)
    assert not negotiation.may_counter_offer(RULES)
    mediated = start_mediation(negotiation, RULES)
    assert (mediated.mediation_held, mediated.stage()) == (True, Stage.MEDIATION)
    assert not mediated.mediation_due(RULES)
    assert not mediated.referral_due()
    assert record_rejection(mediated, offer, at=AT).referral_due()
    assert mediated.rejections[0].offer_hash == offer_hash(offer)


# --- Counter-offers ------------------------------------------------------------------


def test_rejecting_100_for_500_ends_in_mediation_with_refund_300_coupon_and_free_pickup():
    offer = first_offer()
    assert [(r.kind, r.amount) for r in offer.remedies] == [
        (RemedyKind.COUPON, Decimal("100.00")),
        (RemedyKind.EXPLANATION, Decimal("0.00")),
    ]
    # The agent's round: one step up, within the agent's ceiling.
    second = counter_offer(offer, facts=FACTS, stage=Stage.NEGOTIATION, approval_limit=AGENT_LIMIT)
    assert second.compensation_value == Decimal("200.00")
    assert not second.approval.required
    assert second.rules_applied[-1].rule_id == "negotiation.negotiation"
    assert second.rules_applied[-1].detail == "compensation 100.00 -> 200.00"
    with pytest.raises(NegotiationRefused, match="escalate to mediation"):
        counter_offer(second, facts=FACTS, stage=Stage.NEGOTIATION, approval_limit=AGENT_LIMIT)
    # The supervisor's settlement: refund with a free pickup and a 300 coupon.
    settled = counter_offer(
        second,
        facts=FACTS,
        stage=Stage.MEDIATION,
        approval_limit=SUPERVISOR_LIMIT,
        concessions=(Concession.REFUND, Concession.FREE_RETURN_PICKUP),
    )
    refund, coupon, explanation = settled.remedies
    assert (refund.kind, refund.amount, refund.pickup) == (
        RemedyKind.RETURN_AND_REFUND,
        Decimal("399.00"),
        True,
    )
    assert (refund.paid_by, refund.return_shipping_paid_by) == (Party.MERCHANT, Party.PLATFORM)
    assert refund.refund_within_days_of_return == 7
    assert (coupon.amount, coupon.source, coupon.paid_by) == (
        Decimal("300.00"),
        RemedySource.MEDIATION,
        Party.PLATFORM,
    )
    assert explanation.kind is RemedyKind.EXPLANATION
    assert not settled.approval.required
    assert bounds_problems(settled, stage=Stage.MEDIATION, policy=load_policy()) == ()
    assert bounds_problems(settled, stage=Stage.NEGOTIATION, policy=load_policy()) == (
        "compensation of 300.00 is above the negotiation ceiling of 200.00",
        "mediation remedies are a supervisor's, in mediation",
    )


def test_the_customers_500_is_beyond_mediation_and_goes_to_an_outside_body():
    with pytest.raises(NegotiationRefused, match=r"above the mediation ceiling of 300\.00: refer"):
        counter_offer(
            first_offer(),
            facts=FACTS,
            stage=Stage.MEDIATION,
            approval_limit=SUPERVISOR_LIMIT,
            compensation=Decimal(500),
        )


def test_a_counter_offer_above_the_agents_limit_goes_to_approval():
    offer = first_offer()
    proposal = counter_offer(
        offer, facts=FACTS, stage=Stage.NEGOTIATION, approval_limit=Decimal(150)
    )
    assert proposal.approval.required
    assert "above the approval limit of 150.00" in proposal.approval.reasons[0]


def test_never_more_than_the_customer_asked():
    modest = replace(FACTS, demands={"compensation": Decimal(150)})
    offer = first_offer()
    proposal = counter_offer(
        offer, facts=modest, stage=Stage.NEGOTIATION, approval_limit=AGENT_LIMIT
    )
    assert proposal.compensation_value == Decimal("150.00")


@pytest.mark.parametrize(
    ("stage", "concessions", "message"),
    [
        (Stage.NEGOTIATION, (Concession.REFUND,), "only a supervisor mediating"),
        (Stage.MEDIATION, (Concession.FREE_RETURN_PICKUP,), "goes with a refund"),
    ],
)
def test_concessions_belong_to_mediation_and_make_sense(
    stage: Stage, concessions: tuple[Concession, ...], message: str
):
    with pytest.raises(NegotiationRefused, match=message):
        counter_offer(
            first_offer(),
            facts=FACTS,
            stage=stage,
            approval_limit=SUPERVISOR_LIMIT,
            concessions=concessions,
        )


def test_a_policy_without_a_concession_refuses_it():
    strict = load_policy().model_copy(
        update={"negotiation": RULES.model_copy(update={"mediation_concessions": ()})}
    )
    with pytest.raises(NegotiationRefused, match="allows no refund in mediation"):
        counter_offer(
            first_offer(),
            facts=FACTS,
            stage=Stage.MEDIATION,
            approval_limit=SUPERVISOR_LIMIT,
            concessions=(Concession.REFUND,),
            policy=strict,
        )


@given(st.decimals(0, 400, places=0), st.one_of(st.none(), st.decimals(1, 2000, places=0)))
def test_suggestions_stay_within_the_ceiling_and_the_demand(
    current: Decimal, demanded: Decimal | None
):
    offer = first_offer()
    coupon = replace(offer.remedies[0], amount=current)
    proposal = replace(offer, remedies=(coupon,))
    for stage in Stage:
        suggested = suggest_compensation(proposal, stage=stage, rules=RULES, demanded=demanded)
        ceiling = (
            RULES.agent_coupon_ceiling
            if stage is Stage.NEGOTIATION
            else RULES.mediation_coupon_ceiling
        )
        assert suggested <= ceiling
        if demanded is not None:
            assert suggested <= demanded
        if stage is Stage.NEGOTIATION:
            assert suggested <= current + RULES.coupon_step


# --- Proof of consent ----------------------------------------------------------------


def test_consent_keeps_who_when_where_and_exactly_what_was_offered():
    offer = first_offer()
    record = record_consent(offer, customer_id="c-42", at=AT, channel="app")
    assert (record.customer_id, record.consented_at, record.channel) == ("c-42", AT, "app")
    assert record.offer == canonical_offer(offer)
    assert record.offer_hash == hashlib.sha256(record.offer.encode()).hexdigest()
    assert record.summary == offer.describe()
    assert '"amount":"100.00"' in record.offer
    assert consent_matches(record, offer)


def test_consent_does_not_match_another_offer_or_a_tampered_record():
    offer = first_offer()
    record = record_consent(offer, customer_id="c-42", at=AT, channel="app")
    richer = counter_offer(offer, facts=FACTS, stage=Stage.NEGOTIATION, approval_limit=AGENT_LIMIT)
    assert not consent_matches(record, richer)
    tampered = replace(record, offer=record.offer.replace("100.00", "900.00"))
    assert not consent_matches(tampered, offer)


def test_the_canonical_offer_is_stable_and_keeps_chinese_text():
    offer = evaluate(
        CaseFacts("service_attitude", "rude", Responsibility.MERCHANT, Decimal(100)),
        approval_limit=AGENT_LIMIT,
    )
    assert canonical_offer(offer) == canonical_offer(replace(offer))
    assert "深表歉意" in canonical_offer(offer)


# --- External referral ---------------------------------------------------------------


def test_referral_options_name_the_consumer_association_and_the_platform_dispute_centre():
    assert REFERRAL_LABELS[ReferralBody.CONSUMER_ASSOCIATION][0] == "消费者协会"
    assert set(REFERRAL_LABELS) == set(ReferralBody)


def test_a_settlement_is_recorded_with_its_remedies_and_leads_to_execution():
    referral = refer(ReferralBody.CONSUMER_ASSOCIATION, at=AT, reference="XF-2025-0199")
    outcome = ExternalOutcome(
        OutcomeKind.SETTLED,
        AT + timedelta(days=10),
        "mediated: refund and 250 coupon",
        (Remedy(RemedyKind.REFUND, Decimal(399)), Remedy(RemedyKind.COUPON, Decimal(250))),
    )
    recorded = record_outcome(referral, outcome)
    assert recorded.outcome is not None
    assert {r.source for r in recorded.outcome.remedies} == {RemedySource.EXTERNAL}
    assert recorded.outcome.trigger is Trigger.RECORD_EXTERNAL_SETTLEMENT
    with pytest.raises(NegotiationRefused, match="already recorded"):
        record_outcome(recorded, outcome)


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (ExternalOutcome(OutcomeKind.SETTLED, AT, "agreed", ()), "lists the remedies"),
        (ExternalOutcome(OutcomeKind.DISMISSED, AT, " "), "states what the body decided"),
        (
            ExternalOutcome(OutcomeKind.DISMISSED, AT - timedelta(days=1), "no"),
            "before the referral",
        ),
    ],
)
def test_outcomes_that_do_not_fit_are_refused(outcome: ExternalOutcome, message: str):
    with pytest.raises(NegotiationRefused, match=message):
        record_outcome(refer(ReferralBody.PLATFORM_DISPUTE_CENTRE, at=AT), outcome)


def test_a_dismissal_rejects_the_case():
    outcome = ExternalOutcome(OutcomeKind.DISMISSED, AT, "claim not supported")
    assert outcome.trigger is Trigger.RECORD_EXTERNAL_DISMISSAL
