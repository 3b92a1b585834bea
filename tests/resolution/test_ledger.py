"""Responsibility decisions and the liability ledger: who pays each cost, and the sums."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolution_service.domain.ledger import (
    CONCESSION_REASON,
    LIABILITY,
    CostKind,
    Finding,
    LedgerEntry,
    Responsibility,
    ResponsibilityDecision,
    assign_payers,
    cost_kind,
    decide_responsibility,
    ledger_entries,
    liable_party,
    totals_per_carrier,
    totals_per_merchant,
    totals_per_party,
)
from resolution_service.domain.remedies import Party, Remedy, RemedyKind, RemedySource
from resolution_service.domain.verification import (
    MerchantAnswer,
    Stance,
    VerificationOutcome,
    VerificationResult,
)

AT = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)
SILENT = VerificationOutcome(
    VerificationResult.DEADLINE_MISSED, True, "the merchant did not answer in time"
)
ACCEPTED = VerificationOutcome(
    VerificationResult.ACCEPTED, True, "the merchant accepted responsibility"
)
DISPUTED = VerificationOutcome(
    VerificationResult.DISPUTED,
    False,
    "the merchant disputed with 1 piece(s) of evidence",
    answer=MerchantAnswer(Stance.DISPUTE, AT, "QC passed", ("qc",)),
)


def decided(responsibility: Responsibility) -> ResponsibilityDecision:
    return ResponsibilityDecision(responsibility, responsibility, ("agent found it",), True)


# --- Responsibility ------------------------------------------------------------------


def test_triages_hypothesis_alone_is_not_a_decision():
    decision = decide_responsibility("logistics")
    assert decision.responsibility is Responsibility.LOGISTICS
    assert not decision.decided
    assert decision.reasons == ("triage's hypothesis: logistics",)


def test_an_unknown_hypothesis_counts_as_undetermined():
    assert decide_responsibility("aliens").responsibility is Responsibility.UNDETERMINED
    assert decide_responsibility(None).hypothesis is Responsibility.UNDETERMINED


@pytest.mark.parametrize("verification", [ACCEPTED, SILENT], ids=["accepted", "silent"])
def test_a_merchant_that_accepts_or_stays_silent_answers_for_the_case(
    verification: VerificationOutcome,
):
    decision = decide_responsibility("undetermined", verification=verification)
    assert decision.responsibility is Responsibility.MERCHANT
    assert decision.decided
    assert decision.reasons[-1] == verification.reason


def test_a_dispute_leaves_the_hypothesis_for_the_agent_to_weigh():
    decision = decide_responsibility("merchant", verification=DISPUTED)
    assert (decision.responsibility, decision.decided) == (Responsibility.MERCHANT, False)
    assert "the agent weighs the merchant's evidence" in decision.reasons


def test_the_agents_finding_has_the_last_word_and_its_reason_is_kept():
    finding = Finding(Responsibility.LOGISTICS, "tracking shows the box crushed in transit", "a7")
    decision = decide_responsibility("merchant", verification=DISPUTED, finding=finding)
    assert (decision.responsibility, decision.decided) == (Responsibility.LOGISTICS, True)
    assert decision.reasons[-1] == "a7 found logistics: tracking shows the box crushed in transit"


# --- Who pays ------------------------------------------------------------------------


def test_the_liability_table_covers_every_responsibility_and_cost():
    assert set(LIABILITY) == set(Responsibility)
    for costs in LIABILITY.values():
        assert set(costs) == set(CostKind)


@pytest.mark.parametrize(
    ("responsibility", "goods", "compensation", "shipping"),
    [
        (Responsibility.MERCHANT, Party.MERCHANT, Party.MERCHANT, Party.MERCHANT),
        (Responsibility.LOGISTICS, Party.CARRIER, Party.CARRIER, Party.CARRIER),
        (Responsibility.CUSTOMER, Party.MERCHANT, Party.PLATFORM, Party.CUSTOMER),
        (Responsibility.THIRD_PARTY, Party.PLATFORM, Party.PLATFORM, Party.PLATFORM),
        (Responsibility.FORCE_MAJEURE, Party.MERCHANT, Party.PLATFORM, Party.PLATFORM),
        (Responsibility.UNDETERMINED, Party.PLATFORM, Party.PLATFORM, Party.PLATFORM),
    ],
)
def test_each_responsibility_charges_its_party(
    responsibility: Responsibility, goods: Party, compensation: Party, shipping: Party
):
    refund = Remedy(RemedyKind.RETURN_AND_REFUND, Decimal(100))
    coupon = Remedy(RemedyKind.COUPON, Decimal(50))
    assert liable_party(responsibility, refund)[0] is goods
    assert liable_party(responsibility, coupon)[0] is compensation
    [priced] = assign_payers([refund], responsibility)
    assert (priced.paid_by, priced.return_shipping_paid_by) == (goods, shipping)


def test_concessions_beyond_the_standard_are_the_platforms():
    for source in (RemedySource.GOODWILL, RemedySource.NEGOTIATION, RemedySource.MEDIATION):
        coupon = Remedy(RemedyKind.COUPON, Decimal(200), source=source)
        assert liable_party(Responsibility.LOGISTICS, coupon) == (Party.PLATFORM, CONCESSION_REASON)
    external = Remedy(RemedyKind.COUPON, Decimal(200), source=RemedySource.EXTERNAL)
    assert liable_party(Responsibility.LOGISTICS, external)[0] is Party.CARRIER


def test_gestures_and_rejections_cost_nothing_and_get_no_payer():
    for kind in (RemedyKind.APOLOGY, RemedyKind.EXPLANATION, RemedyKind.REJECTION):
        assert cost_kind(Remedy(kind)) is None
        assert assign_payers([Remedy(kind)], Responsibility.MERCHANT)[0].paid_by is None


# --- Entries and sums ----------------------------------------------------------------


def test_a_crushed_parcel_charges_the_refund_to_the_carrier_and_goodwill_to_the_platform():
    remedies = [
        Remedy(RemedyKind.REFUND, Decimal(299)),
        Remedy(RemedyKind.COUPON, Decimal(200), source=RemedySource.GOODWILL),
        Remedy(RemedyKind.EXPLANATION),
    ]
    entries = ledger_entries(
        remedies, decided(Responsibility.LOGISTICS), merchant_id="m-1", carrier_id="sf"
    )
    assert [(e.party, e.party_id, e.amount, e.remedy) for e in entries] == [
        (Party.CARRIER, "sf", Decimal("299.00"), RemedyKind.REFUND),
        (Party.PLATFORM, None, Decimal("200.00"), RemedyKind.COUPON),
    ]
    assert totals_per_carrier(entries) == {("sf", "CNY"): Decimal("299.00")}
    assert totals_per_merchant(entries) == {}


def test_return_shipping_is_charged_once_its_cost_is_known_to_whoever_the_remedy_says():
    free_pickup = Remedy(
        RemedyKind.RETURN_AND_REFUND, Decimal(399), return_shipping_paid_by=Party.PLATFORM
    )
    entries = ledger_entries(
        [free_pickup],
        decided(Responsibility.MERCHANT),
        merchant_id="m-1",
        return_shipping_cost=Decimal("12"),
    )
    assert [(e.party, e.cost, e.amount, e.reason) for e in entries] == [
        (Party.MERCHANT, CostKind.GOODS, Decimal("399.00"), "the merchant is responsible"),
        (Party.PLATFORM, CostKind.RETURN_SHIPPING, Decimal("12.00"), "as the remedy agreed"),
    ]
    without_cost = ledger_entries([free_pickup], decided(Responsibility.MERCHANT), merchant_id="m")
    assert [e.cost for e in without_cost] == [CostKind.GOODS]


def test_sums_per_merchant_keep_merchants_and_currencies_apart():
    def entry(party: Party, party_id: str, amount: str, currency: str = "CNY") -> LedgerEntry:
        return LedgerEntry(
            party, party_id, Decimal(amount), currency, RemedyKind.REFUND, CostKind.GOODS, ""
        )

    entries = [
        entry(Party.MERCHANT, "m-1", "10.00"),
        entry(Party.MERCHANT, "m-1", "5.50"),
        entry(Party.MERCHANT, "m-1", "3.00", "USD"),
        entry(Party.MERCHANT, "m-2", "1.00"),
        entry(Party.CARRIER, "sf", "7.00"),
    ]
    assert totals_per_merchant(entries) == {
        ("m-1", "CNY"): Decimal("15.50"),
        ("m-1", "USD"): Decimal("3.00"),
        ("m-2", "CNY"): Decimal("1.00"),
    }
    assert totals_per_carrier(entries) == {("sf", "CNY"): Decimal("7.00")}
    assert totals_per_party(entries)[(Party.MERCHANT, "CNY")] == Decimal("16.50")


remedies = st.lists(
    st.builds(
        Remedy,
        kind=st.sampled_from(list(RemedyKind)),
        amount=st.decimals(0, 5000, places=2),
        source=st.sampled_from(list(RemedySource)),
    ),
    max_size=8,
)


@given(remedies, st.sampled_from(list(Responsibility)), st.decimals(0, 50, places=2))
def test_the_ledger_charges_every_cost_exactly_once(
    items: list[Remedy], responsibility: Responsibility, shipping: Decimal
):
    entries = ledger_entries(
        items,
        decided(responsibility),
        merchant_id="m-1",
        carrier_id="sf",
        return_shipping_cost=shipping,
    )
    costly = sum((r.amount for r in items if cost_kind(r) is not None), Decimal(0))
    returns = sum(1 for r in items if r.kind is RemedyKind.RETURN_AND_REFUND)
    assert sum((e.amount for e in entries), Decimal(0)) == costly + returns * shipping
    assert sum(totals_per_party(entries).values(), Decimal(0)) == costly + returns * shipping
    assert all(e.amount > 0 for e in entries)
    named = {Party.MERCHANT: "m-1", Party.CARRIER: "sf"}
    assert all(e.party_id == named.get(e.party) for e in entries)
