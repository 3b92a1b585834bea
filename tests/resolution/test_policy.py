"""The compensation policy: packaged rules, the domain's examples, caps, approval, validation."""

import copy
import json
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolution_service.domain.ledger import Responsibility, cost_kind
from resolution_service.domain.policy import (
    DEFAULT_POLICY_VERSION,
    CaseFacts,
    CompensationPolicy,
    Goodwill,
    PolicyError,
    Proposal,
    evaluate,
    load_policy,
    policy_from_dict,
    policy_from_json,
)
from resolution_service.domain.remedies import (
    COMPENSATION_KINDS,
    GOODS_KINDS,
    ORIGINAL_PAYMENT_METHOD,
    Party,
    RemedyKind,
    RemedySource,
)

AGENT_LIMIT = Decimal(500)


def packaged() -> dict[str, Any]:
    text = (
        resources.files("resolution_service")
        .joinpath("policy", f"{DEFAULT_POLICY_VERSION}.json")
        .read_text("utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


def facts(**overrides: Any) -> CaseFacts:
    values: dict[str, Any] = {
        "category": "product_quality",
        "subcategory": "damaged",
        "responsibility": Responsibility.MERCHANT,
        "order_amount": Decimal("299"),
    }
    values.update(overrides)
    return CaseFacts(**values)


def propose(goodwill: tuple[Goodwill, ...] = (), **overrides: Any) -> Proposal:
    return evaluate(facts(**overrides), approval_limit=AGENT_LIMIT, goodwill=goodwill)


def rule_ids(proposal: Proposal) -> list[str]:
    return [rule.rule_id for rule in proposal.rules_applied]


# --- The packaged policy -------------------------------------------------------------


def test_the_packaged_policy_loads_with_its_version_and_the_laws_presets():
    policy = load_policy()
    assert policy.version == "compensation-v1"
    assert policy.currency == "CNY"
    assert policy.presets.no_reason_return_days == 7
    assert policy.presets.refund_after_return_days == 7
    assert policy.presets.no_reason_return_shipping_paid_by is Party.CUSTOMER
    assert load_policy() is policy


def test_an_unknown_version_is_refused():
    with pytest.raises(PolicyError, match="no compensation policy 'compensation-v9'"):
        load_policy("compensation-v9")


# --- The domain's examples -----------------------------------------------------------


def test_a_broken_item_with_a_return_gets_return_refund_and_the_quality_coupon():
    proposal = propose(demands={"return": None, "refund": None})
    refund, coupon, explanation = proposal.remedies
    assert refund.kind is RemedyKind.RETURN_AND_REFUND
    assert (refund.amount, refund.refund_method) == (Decimal("299.00"), ORIGINAL_PAYMENT_METHOD)
    assert refund.refund_within_days_of_return == 7
    assert (refund.paid_by, refund.return_shipping_paid_by) == (Party.MERCHANT, Party.MERCHANT)
    assert (coupon.kind, coupon.amount, coupon.coupon_threshold) == (
        RemedyKind.COUPON,
        Decimal("50.00"),
        Decimal(0),
    )
    assert explanation.kind is RemedyKind.EXPLANATION
    assert rule_ids(proposal) == ["quality.remedy", "quality.coupon", "default.explanation"]
    assert "the customer asked for return" in proposal.rules_applied[0].detail
    assert proposal.policy_version == "compensation-v1"
    assert not proposal.approval.required


def test_a_crushed_parcel_gets_a_refund_in_3_working_days_and_a_200_goodwill_coupon_approved():
    # The standard is 50 for quality; the 200 the example gives is goodwill: above the 100 an
    # agent may grant alone it needs a supervisor, and the platform bears it.
    goodwill = Goodwill(RemedyKind.COUPON, "the company accepts responsibility", Decimal(200), 30)
    proposal = propose(
        (goodwill,), responsibility=Responsibility.LOGISTICS, demands={"refund": None}
    )
    refund, coupon, _ = proposal.remedies
    assert (refund.kind, refund.within_business_days, refund.paid_by) == (
        RemedyKind.REFUND,
        3,
        Party.CARRIER,
    )
    assert (coupon.amount, coupon.coupon_valid_days, coupon.source, coupon.paid_by) == (
        Decimal("200.00"),
        30,
        RemedySource.GOODWILL,
        Party.PLATFORM,
    )
    assert rule_ids(proposal)[-1] == "goodwill"
    assert "replaces the policy's 50.00" in proposal.rules_applied[-1].detail
    assert proposal.approval.required
    assert proposal.approval.reasons == (
        "goodwill of 200.00 is above the 100 an agent may grant alone",
    )


def test_a_cracked_kettle_is_reshipped_within_24_hours_with_a_50_coupon():
    proposal = propose(order_amount=Decimal("159"), demands={"reship": None})
    assert proposal.kinds() == (RemedyKind.RESHIP, RemedyKind.COUPON, RemedyKind.EXPLANATION)
    assert proposal.remedies[0].within_hours == 24
    assert proposal.total_value == Decimal("50.00")
    assert not proposal.approval.required


def test_a_quality_problem_without_a_named_demand_is_reshipped_by_default():
    proposal = propose()
    assert proposal.remedies[0].kind is RemedyKind.RESHIP
    assert "by default" in proposal.rules_applied[0].detail


def test_expired_food_gets_a_refund_and_100_coupon_not_the_general_quality_coupon():
    proposal = propose(subcategory="expired", order_amount=Decimal("59"))
    assert [(r.kind, r.amount) for r in proposal.remedies[:2]] == [
        (RemedyKind.REFUND, Decimal("59.00")),
        (RemedyKind.COUPON, Decimal("100.00")),
    ]
    assert rule_ids(proposal) == ["expired.refund", "expired.coupon", "default.explanation"]


@pytest.mark.parametrize(
    ("order", "delay", "coupon", "capped"),
    [
        (Decimal("300"), Decimal(3), Decimal("30.00"), False),
        (Decimal("899"), Decimal(3), Decimal("50.00"), True),
        (Decimal("199.95"), Decimal("2.5"), Decimal("20.00"), False),
        (Decimal("899"), Decimal(2), None, False),
    ],
)
def test_a_late_delivery_over_two_days_gets_10_percent_capped_at_50(
    order: Decimal, delay: Decimal, coupon: Decimal | None, capped: bool
):
    proposal = propose(
        category="logistics",
        subcategory="delayed",
        responsibility=Responsibility.LOGISTICS,
        order_amount=order,
        delay_days=delay,
    )
    coupons = [r.amount for r in proposal.remedies if r.kind is RemedyKind.COUPON]
    assert coupons == ([coupon] if coupon else [])
    assert bool(proposal.caps_applied) is capped
    if capped:
        [cap] = proposal.caps_applied
        assert (cap.rule_id, cap.uncapped, cap.capped) == (
            "logistics.delay_coupon",
            Decimal("89.90"),
            Decimal("50.00"),
        )
    assert proposal.remedies[-1].text is not None
    assert "tracking" in proposal.remedies[-1].text


def test_service_attitude_gets_an_apology_and_a_30_coupon():
    proposal = propose(
        category="service_attitude", subcategory="rude", responsibility=Responsibility.UNDETERMINED
    )
    assert [(r.kind, r.amount) for r in proposal.remedies] == [
        (RemedyKind.COUPON, Decimal("30.00")),
        (RemedyKind.APOLOGY, Decimal("0.00")),
    ]
    assert proposal.remedies[0].paid_by is Party.PLATFORM


def test_a_change_of_mind_within_7_days_is_returned_at_the_customers_shipping_cost():
    proposal = propose(
        category="after_sales",
        subcategory="return_refused",
        responsibility=Responsibility.CUSTOMER,
        after_sales_reason="changed_mind",
        days_since_delivery=7,
    )
    refund = proposal.remedies[0]
    assert refund.kind is RemedyKind.RETURN_AND_REFUND
    assert refund.return_shipping_paid_by is Party.CUSTOMER
    assert refund.refund_within_days_of_return == 7
    assert rule_ids(proposal)[0] == "law.no_reason_return"


@pytest.mark.parametrize(
    ("days", "returnable"),
    [(8, True), (3, False), (None, True)],
    ids=["late", "excluded", "no-date"],
)
def test_a_change_of_mind_outside_the_law_is_rejected_with_no_compensation(
    days: int | None, returnable: bool
):
    proposal = propose(
        category="after_sales",
        subcategory="return_refused",
        responsibility=Responsibility.CUSTOMER,
        after_sales_reason="changed_mind",
        days_since_delivery=days,
        returnable_without_reason=returnable,
    )
    assert proposal.is_rejection
    assert proposal.kinds() == (RemedyKind.REJECTION, RemedyKind.EXPLANATION)
    assert proposal.remedies[0].text is not None
    assert "7 days" in proposal.remedies[0].text


def test_goodwill_compensation_is_dropped_from_a_rejection():
    goodwill = Goodwill(RemedyKind.COUPON, "keep the customer", Decimal(20))
    proposal = propose((goodwill,), responsibility=Responsibility.CUSTOMER)
    assert proposal.kinds() == (RemedyKind.REJECTION, RemedyKind.EXPLANATION)
    assert proposal.compensation_value == 0


def test_force_majeure_keeps_the_goods_remedy_and_owes_no_compensation():
    proposal = propose(responsibility=Responsibility.FORCE_MAJEURE, demands={"refund": None})
    assert proposal.kinds() == (RemedyKind.REFUND, RemedyKind.EXPLANATION)
    assert "force_majeure.no_compensation" in rule_ids(proposal)


def test_a_partial_refund_asked_for_is_what_is_refunded():
    proposal = propose(demands={"refund": Decimal("40")})
    refund = proposal.remedies[0]
    assert (refund.kind, refund.amount, refund.partial) == (
        RemedyKind.REFUND,
        Decimal("40.00"),
        True,
    )
    assert "partial refund of the 40 asked for" in proposal.rules_applied[0].detail


# --- Approval and caps ---------------------------------------------------------------


def test_an_offer_above_the_proposers_limit_needs_approval():
    proposal = propose(order_amount=Decimal("3000"), demands={"refund": None})
    assert proposal.total_value == Decimal("3050.00")
    assert proposal.approval.reasons == (
        "the offer gives 3050.00 CNY, above the approval limit of 500.00",
    )
    senior = evaluate(
        facts(order_amount=Decimal("3000"), demands={"refund": None}),
        approval_limit=Decimal(5000),
    )
    assert not senior.approval.required


def test_any_flag_on_the_account_needs_approval_whatever_the_amount():
    proposal = propose(customer_flags=frozenset({"professional_complainant"}))
    assert proposal.approval.required
    assert proposal.approval.reasons == ("the account is flagged (professional_complainant)",)


def test_compensation_is_capped_per_case():
    goodwill = (
        Goodwill(RemedyKind.COUPON, "big gesture", Decimal(800)),
        Goodwill(RemedyKind.BALANCE_CREDIT, "and credit", Decimal(500)),
    )
    proposal = propose(goodwill)
    assert proposal.compensation_value == Decimal("1000.00")
    [cap] = proposal.caps_applied
    assert (cap.rule_id, cap.remedy, cap.uncapped, cap.capped) == (
        "caps.compensation_per_case",
        RemedyKind.BALANCE_CREDIT,
        Decimal("500.00"),
        Decimal("200.00"),
    )


def test_goodwill_gestures_are_added_once():
    proposal = propose((Goodwill(RemedyKind.APOLOGY, "we are sorry for the wait"),))
    assert proposal.kinds()[-1] is RemedyKind.APOLOGY
    assert proposal.remedies[-1].text == "we are sorry for the wait"


@pytest.mark.parametrize(
    ("kind", "amount", "reason", "message"),
    [
        (RemedyKind.REFUND, Decimal(10), "x", "compensation or a gesture"),
        (RemedyKind.COUPON, Decimal(0), "x", "positive amount"),
        (RemedyKind.COUPON, Decimal(10), " ", "reason"),
    ],
)
def test_goodwill_is_compensation_or_a_gesture_with_a_reason(
    kind: RemedyKind, amount: Decimal, reason: str, message: str
):
    with pytest.raises(PolicyError, match=message):
        Goodwill(kind, reason, amount)


def test_an_order_in_another_currency_is_refused():
    with pytest.raises(PolicyError, match="prices in CNY, the order is in USD"):
        propose(currency="USD")


# --- Validation of policy files ------------------------------------------------------


def broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(packaged())
    change(data)
    return data


def rule(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in data["rules"] if r["id"] == rule_id)
    return found


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["rules"].append(copy.deepcopy(d["rules"][0])), "duplicate rule ids"),
        (lambda d: rule(d, "quality.coupon")["remedies"][0].update(kind="cash"), "kind"),
        (lambda d: rule(d, "quality.coupon").update(group="goods"), "cannot give coupon"),
        (lambda d: rule(d, "quality.remedy").update(default_option="apology"), "default_option"),
        (lambda d: rule(d, "quality.coupon")["remedies"][0].pop("valid_days"), "valid_days"),
        (
            lambda d: rule(d, "law.no_reason_return")["remedies"][0].update(
                refund_within_days_of_return=10
            ),
            "the law allows at most 7",
        ),
        (lambda d: rule(d, "logistics.delay_coupon")["remedies"][0].pop("percent_of_order"), ""),
        (lambda d: rule(d, "quality.coupon")["remedies"][0].update(cap=10), "cap applies"),
        (lambda d: rule(d, "quality.coupon").update(remedies=[]), "exactly one of"),
        (lambda d: rule(d, "quality.coupon").update(colour="red"), "Extra inputs"),
        (lambda d: d.update(version="v1"), "version"),
        (lambda d: d["caps"].update(compensation_per_case=100), "above caps"),
        (lambda d: d["negotiation"].update(mediation_coupon_ceiling=50), "below agent"),
        (
            lambda d: rule(d, "customer.fault")["remedies"][0].pop("text"),
            "rejection needs its explanation",
        ),
        (lambda d: rule(d, "quality.coupon").update(id="Quality Coupon"), "pattern"),
    ],
)
def test_a_bad_policy_file_is_refused_with_a_clear_reason(change: Any, message: str):
    with pytest.raises(PolicyError, match="invalid compensation policy") as refused:
        policy_from_dict(broken(change))
    assert message in str(refused.value)


def test_a_policy_that_is_not_json_is_refused():
    with pytest.raises(PolicyError, match="not valid JSON"):
        policy_from_json("{")


def test_json_numbers_are_read_as_exact_decimals():
    policy: CompensationPolicy = policy_from_json(json.dumps(packaged()))
    delay = next(r for r in policy.rules if r.id == "logistics.delay_coupon")
    assert delay.remedies[0].percent_of_order == Decimal(10)


# --- Properties ----------------------------------------------------------------------

CATEGORIES = [
    ("product_quality", "damaged"),
    ("product_quality", "expired"),
    ("logistics", "delayed"),
    ("logistics", "lost"),
    ("logistics", "wrong_item"),
    ("service_attitude", "rude"),
    ("after_sales", "return_refused"),
    ("system_failure", "payment_error"),
    ("unknown_category", None),
]
demands = st.dictionaries(
    st.sampled_from(["refund", "return", "exchange", "reship", "repair", "compensation"]),
    st.one_of(st.none(), st.decimals(1, 1000, places=2)),
    max_size=3,
)


@given(
    st.sampled_from(CATEGORIES),
    st.sampled_from(list(Responsibility)),
    st.decimals(1, 20000, places=2),
    st.decimals(0, 10, places=1),
    demands,
    st.frozensets(st.sampled_from(["suspected_abuse", "vip"]), max_size=1),
    st.decimals(0, 5000, places=0),
    st.lists(st.decimals(1, 1500, places=0), max_size=2),
)
def test_every_proposal_keeps_the_policys_promises(
    category: tuple[str, str | None],
    responsibility: Responsibility,
    order: Decimal,
    delay: Decimal,
    wanted: dict[str, Decimal | None],
    flags: frozenset[str],
    limit: Decimal,
    goodwill_amounts: list[Decimal],
):
    policy = load_policy()
    goodwill = tuple(Goodwill(RemedyKind.COUPON, "gesture", a) for a in goodwill_amounts)
    proposal = evaluate(
        CaseFacts(
            category[0],
            category[1],
            responsibility,
            order,
            delay_days=delay,
            demands=wanted,
            customer_flags=flags,
        ),
        approval_limit=limit,
        goodwill=goodwill,
    )
    kinds = proposal.kinds()
    assert sum(1 for k in kinds if k in GOODS_KINDS) <= 1
    assert proposal.compensation_value <= policy.caps.compensation_per_case
    if proposal.is_rejection:
        assert not any(k in COMPENSATION_KINDS for k in kinds)
    for remedy in proposal.remedies:
        assert (remedy.paid_by is not None) == (cost_kind(remedy) is not None)
        if remedy.kind in (RemedyKind.REFUND, RemedyKind.RETURN_AND_REFUND):
            assert remedy.amount <= order
        if remedy.rule_id == "logistics.delay_coupon":
            assert remedy.amount <= 50
    granted = Decimal(0) if proposal.is_rejection else sum(goodwill_amounts, Decimal(0))
    expected = (
        proposal.total_value > limit
        or bool(flags)
        or granted > policy.approval.goodwill_agent_ceiling
    )
    assert proposal.approval.required is expected
