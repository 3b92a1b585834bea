"""Merchant verification: a deadline in business time, a stance, the default when silent."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from resolution_service.domain.timing import TimeBudget, TimeUnit
from resolution_service.domain.verification import (
    DEFAULT_RESPONSE_TIME,
    RESPONSE_TIME_PRESETS,
    MerchantAnswer,
    Stance,
    VerificationError,
    VerificationPolicy,
    VerificationResult,
    deadline_missed,
    is_overdue,
    record_answer,
    request_verification,
)
from shared.calendar import load_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = load_calendar("cn")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


def test_the_default_is_two_working_days():
    assert TimeBudget(2, TimeUnit.WORKING_DAYS) == DEFAULT_RESPONSE_TIME
    request = request_verification(requested_at=local(2025, 6, 6, 17, 0), calendar=CN)
    # Friday 17:00: one hour on Friday, Monday's 7.5, and 6.5 more on Tuesday.
    assert request.due_at == local(2025, 6, 10, 17, 0)
    assert request.counts_business_time


def test_a_request_before_a_holiday_waits_for_the_holiday_to_end():
    request = request_verification(requested_at=local(2025, 9, 30, 10, 0), calendar=CN)
    assert request.due_at == local(2025, 10, 10, 10, 0)


def test_marketplace_presets_can_be_chosen():
    wechat = VerificationPolicy(response_time=RESPONSE_TIME_PRESETS["wechat_store"])
    request = request_verification(
        requested_at=local(2025, 6, 6, 17, 0), calendar=CN, policy=wechat
    )
    assert request.due_at == local(2025, 6, 8, 17, 0)
    assert not request.counts_business_time
    assert set(RESPONSE_TIME_PRESETS) == {"lazada", "wechat_store", "amazon_a_to_z", "shopee"}


def test_accepting_puts_the_case_on_the_merchant():
    request = request_verification(requested_at=local(2025, 6, 9, 9, 0), calendar=CN)
    outcome = record_answer(request, MerchantAnswer(Stance.ACCEPT, local(2025, 6, 9, 11, 0)))
    assert outcome.result is VerificationResult.ACCEPTED
    assert outcome.proceeds_against_merchant
    assert not outcome.late


def test_a_dispute_needs_evidence():
    request = request_verification(requested_at=local(2025, 6, 9, 9, 0), calendar=CN)
    bare = MerchantAnswer(Stance.DISPUTE, local(2025, 6, 9, 11, 0), "we shipped it intact")
    with pytest.raises(VerificationError, match="needs evidence"):
        record_answer(request, bare)
    backed = MerchantAnswer(
        Stance.DISPUTE, local(2025, 6, 9, 11, 0), "QC passed", ("qc-report", "outbound-photo")
    )
    outcome = record_answer(request, backed)
    assert outcome.result is VerificationResult.DISPUTED
    assert not outcome.proceeds_against_merchant
    assert "2 piece(s) of evidence" in outcome.reason


def test_an_answer_dated_before_the_request_is_refused():
    request = request_verification(requested_at=local(2025, 6, 9, 9, 0), calendar=CN)
    with pytest.raises(VerificationError, match="before the request"):
        record_answer(request, MerchantAnswer(Stance.ACCEPT, local(2025, 6, 9, 8, 0)))


def test_a_late_answer_that_beats_the_timer_still_counts_and_is_marked_late():
    request = request_verification(requested_at=local(2025, 6, 9, 9, 0), calendar=CN)
    late = request.due_at + timedelta(minutes=5)
    outcome = record_answer(request, MerchantAnswer(Stance.ACCEPT, late))
    assert outcome.late


def test_silence_past_the_deadline_proceeds_against_the_merchant():
    request = request_verification(requested_at=local(2025, 6, 6, 17, 0), calendar=CN)
    assert not is_overdue(request, request.due_at - timedelta(seconds=1))
    with pytest.raises(VerificationError, match="has until"):
        deadline_missed(request, request.due_at - timedelta(seconds=1))
    outcome = deadline_missed(request, request.due_at)
    assert outcome.result is VerificationResult.DEADLINE_MISSED
    assert outcome.proceeds_against_merchant
    assert "did not answer within 2 working days" in outcome.reason
