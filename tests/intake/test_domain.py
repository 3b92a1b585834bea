"""Intake's pure rules: numbering, promises, windows, completeness, scope, duplicates, view."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake_service.domain.completeness import missing_items
from intake_service.domain.customer_view import (
    IntakeStatus,
    ViewState,
    VisibleState,
    apply_change,
    view_change,
)
from intake_service.domain.duplicates import OpenComplaint, find_duplicate, over_open_cap
from intake_service.domain.facts import ComplaintFacts, DemandFact
from intake_service.domain.numbering import format_number, numbering_period, parse_number
from intake_service.domain.promises import first_response_due
from intake_service.domain.scope import ScopePolicy, check_scope
from intake_service.domain.windows import AfterSalesWindows, check_window

NOW = datetime(2024, 5, 10, 9, 30, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def facts(**overrides: object) -> ComplaintFacts:
    """A complete product complaint: damaged, return and refund, with a photo."""
    values: dict[str, object] = {
        "target": "product",
        "demands": (DemandFact("return"), DemandFact("refund")),
        "after_sales_reason": "damaged",
        "order_number": "2024042800123",
        "order_amount": Decimal("299"),
        "order_item_count": 1,
        "delivered_at": NOW - timedelta(days=2),
        "evidence_count": 1,
    }
    values.update(overrides)
    return ComplaintFacts(**values)  # type: ignore[arg-type]


# --- numbering -----------------------------------------------------------------------


def test_the_month_is_the_business_calendars_not_utcs():
    # 2024-05-31 20:00 UTC is already 1 June in Shanghai.
    assert numbering_period(datetime(2024, 5, 31, 20, 0, tzinfo=UTC), SHANGHAI) == "202406"
    assert numbering_period(datetime(2024, 5, 31, 15, 59, tzinfo=UTC), SHANGHAI) == "202405"


@given(st.integers(min_value=1, max_value=10**9))
def test_numbers_round_trip_and_sort_by_sequence_within_a_month(sequence: int):
    number = format_number("202405", sequence)
    assert parse_number(number) == ("202405", sequence)
    if sequence < 999_999:
        assert len(number) == len("202405-000001")
        assert format_number("202405", sequence) < format_number("202405", sequence + 1)


def test_parse_refuses_what_is_not_a_number():
    assert parse_number("2024-05-1") is None
    assert parse_number("202405-12") is None


# --- promises ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "seconds"), [("chat", 60), ("hotline", 30), ("app", 86400), ("unknown", 7200)]
)
def test_first_response_promise_by_channel(channel: str, seconds: int):
    promises = {"chat": 60, "hotline": 30, "app": 86400}
    assert first_response_due(channel, NOW, promises, 7200) == NOW + timedelta(seconds=seconds)


# --- after-sales windows -------------------------------------------------------------


def test_a_no_reason_return_has_seven_days():
    windows = AfterSalesWindows()
    changed_mind = facts(after_sales_reason="changed_mind", evidence_count=0)
    assert not check_window(changed_mind, windows, NOW + timedelta(days=5)).rejected
    late = check_window(changed_mind, windows, NOW + timedelta(days=6))
    assert late.rejected
    assert "return requested 8 days after delivery, the window is 7 days" in late.reason


def test_a_quality_problem_has_fifteen_days():
    windows = AfterSalesWindows()
    assert not check_window(facts(), windows, NOW + timedelta(days=12)).rejected
    assert check_window(facts(), windows, NOW + timedelta(days=14)).rejected


def test_a_complaint_that_also_asks_for_an_apology_is_never_rejected_for_time():
    late = facts(demands=(DemandFact("return"), DemandFact("apology")))
    decision = check_window(late, AfterSalesWindows(), NOW + timedelta(days=100))
    assert not decision.rejected
    assert [e.demand for e in decision.expired] == ["return"]


def test_a_repair_counts_against_the_warranty():
    repair = facts(demands=(DemandFact("repair"),), after_sales_reason="quality_issue")
    assert not check_window(repair, AfterSalesWindows(), NOW + timedelta(days=200)).rejected
    assert check_window(repair, AfterSalesWindows(), NOW + timedelta(days=400)).rejected


def test_undelivered_goods_have_no_window():
    lost = facts(after_sales_reason="not_delivered", demands=(DemandFact("refund"),))
    assert not check_window(lost, AfterSalesWindows(), NOW + timedelta(days=90)).rejected


# --- completeness --------------------------------------------------------------------


def test_a_complete_complaint_misses_nothing():
    assert missing_items(facts()) == ()


def test_every_missing_item_is_listed_at_once():
    bare = facts(
        order_number=None,
        order_item_count=0,
        delivered_at=None,
        evidence_count=0,
        demands=(DemandFact("return"), DemandFact("compensation")),
    )
    assert [m.field for m in missing_items(bare)] == [
        "order.number",
        "order.items",
        "order.delivered_at",
        "evidence_ids",
        "demands.compensation.amount",
    ]


def test_a_complaint_about_staff_needs_when_it_happened_not_an_order():
    staff = ComplaintFacts(target="staff", demands=(DemandFact("apology"),))
    assert [m.field for m in missing_items(staff)] == ["occurred_at"]
    when = ComplaintFacts(target="staff", demands=(DemandFact("apology"),), occurred_at=NOW)
    assert missing_items(when) == ()


def test_a_changed_mind_return_needs_no_photo():
    assert missing_items(facts(after_sales_reason="changed_mind", evidence_count=0)) == ()


# --- scope ---------------------------------------------------------------------------


def test_no_reason_return_of_an_excluded_item_is_declined():
    excluded = facts(after_sales_reason="changed_mind", all_items_returnable_without_reason=False)
    decision = check_scope(excluded, ScopePolicy())
    assert decision is not None
    assert decision.code == "not_returnable_without_reason"
    assert decision.alternative
    # The same item with a quality problem is in scope.
    assert check_scope(facts(all_items_returnable_without_reason=False), ScopePolicy()) is None


def test_repair_without_a_quality_problem_is_declined():
    decision = check_scope(
        facts(demands=(DemandFact("repair"),), after_sales_reason="other"), ScopePolicy()
    )
    assert decision is not None
    assert decision.code == "repair_without_quality_problem"


def test_compensation_far_beyond_the_order_is_declined():
    greedy = facts(demands=(DemandFact("compensation", Decimal("5000")),))
    decision = check_scope(greedy, ScopePolicy())
    assert decision is not None
    assert decision.code == "compensation_beyond_policy"
    fair = facts(demands=(DemandFact("compensation", Decimal("100")),))
    assert check_scope(fair, ScopePolicy()) is None


# --- duplicates ----------------------------------------------------------------------


def open_complaint(order: str | None, target: str, age: timedelta) -> OpenComplaint:
    """An open complaint received `age` before NOW."""
    return OpenComplaint(uuid.uuid4(), "202405-000001", order, target, NOW - age)


def test_same_order_and_target_within_the_window_is_a_duplicate():
    earlier = open_complaint("o-1", "product", timedelta(days=3))
    found = find_duplicate(
        [earlier], order_number="o-1", target="product", now=NOW, window=timedelta(days=30)
    )
    assert found == earlier


@pytest.mark.parametrize(
    ("order", "target", "age"),
    [("o-2", "product", 1), ("o-1", "logistics", 1), ("o-1", "product", 31)],
)
def test_another_order_target_or_an_old_complaint_is_not(order: str, target: str, age: int):
    earlier = open_complaint("o-1", "product", timedelta(days=age))
    found = find_duplicate(
        [earlier], order_number=order, target=target, now=NOW, window=timedelta(days=30)
    )
    assert found is None


def test_without_an_order_number_nothing_is_linked():
    earlier = open_complaint(None, "staff", timedelta(hours=1))
    assert (
        find_duplicate([earlier], order_number=None, target="staff", now=NOW, window=timedelta(1))
        is None
    )


def test_the_open_cap():
    assert not over_open_cap(4, 5)
    assert over_open_cap(5, 5)


# --- the customer's view -------------------------------------------------------------


def view(status: IntakeStatus = IntakeStatus.RECEIVED, at: datetime = NOW) -> ViewState:
    """The view of a complaint just received."""
    return ViewState(status.value, VisibleState.PENDING_ACCEPTANCE, at, "first_response", NOW)


def test_a_case_opened_means_processing_with_the_next_promise():
    due = NOW + timedelta(hours=2)
    change = view_change("case.opened", {"status": "processing", "first_response_due_at": due})
    assert change is not None
    after = apply_change(view(), change, NOW + timedelta(minutes=1))
    assert after is not None
    assert after.visible_state == VisibleState.PROCESSING
    assert after.next_step_due_at == due


def test_an_unknown_event_type_is_ignored():
    assert view_change("case.something_new", {"status": "completed"}) is None


def test_an_event_older_than_the_last_change_adds_its_step_only():
    change = view_change("case.opened", {"status": "processing", "first_response_due_at": NOW})
    assert change is not None
    assert apply_change(view(at=NOW), change, NOW - timedelta(seconds=1)) is None


def test_a_withdrawn_complaint_stays_closed():
    change = view_change("case.opened", {"status": "processing", "first_response_due_at": NOW})
    assert change is not None
    assert apply_change(view(IntakeStatus.WITHDRAWN), change, NOW + timedelta(hours=1)) is None


def test_an_acknowledgement_is_a_step_without_a_state():
    change = view_change("acknowledgement.recorded", {"channel": "sms"})
    assert change is not None
    assert change.step.code == "acknowledgement_sent"
    assert apply_change(view(), change, NOW + timedelta(hours=1)) is None


def test_intake_subscribes_to_exactly_the_events_its_view_knows():
    from intake_service.domain.customer_view import VIEW_RULES
    from intake_service.handlers import SUBSCRIPTIONS

    subscribed = {event for handlers in SUBSCRIPTIONS.values() for event in handlers}
    assert subscribed == set(VIEW_RULES)


@pytest.mark.parametrize(
    ("event_type", "state"),
    [
        ("case.remedy_offered", VisibleState.AWAITING_CUSTOMER_CONFIRMATION),
        ("case.offer_accepted", VisibleState.PROCESSING),
        ("case.offer_rejected", VisibleState.PROCESSING),
        ("case.resolved", VisibleState.COMPLETED),
        ("case.rejected", VisibleState.COMPLETED),
        ("case.closed", VisibleState.CLOSED),
        ("case.appealed", VisibleState.PROCESSING),
        ("case.reopened", VisibleState.PROCESSING),
    ],
)
def test_case_events_show_the_visible_state_they_carry(event_type: str, state: VisibleState):
    payload = {
        "customer_visible_state": state.value,
        "remedies": [{"description": "full refund of 299.00 CNY"}],
        "appeal_window_ends_at": NOW + timedelta(days=30),
    }
    change = view_change(event_type, payload)
    assert change is not None
    assert change.step.summary_zh
    assert change.step.summary_en
    after = apply_change(view(), change, NOW + timedelta(hours=1))
    assert after is not None
    assert after.visible_state == state


def test_an_offer_shows_its_remedies_and_the_hash_to_accept_it_by():
    change = view_change(
        "case.remedy_offered",
        {
            "customer_visible_state": "awaiting_customer_confirmation",
            "remedies": [{"description": "no-threshold coupon of 50.00 CNY, valid 30 days"}],
            "offer_hash": "a" * 64,
        },
    )
    assert change is not None
    assert change.step.details == {
        "remedies": ["no-threshold coupon of 50.00 CNY, valid 30 days"],
        "offer_hash": "a" * 64,
    }


def test_a_case_state_this_version_does_not_know_keeps_what_the_customer_saw():
    change = view_change("case.resolved", {"customer_visible_state": "mystery"})
    assert change is not None
    assert change.visible_state is None
