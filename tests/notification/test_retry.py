"""Retry schedules: exponential backoff with jitter, then the dead letters."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notification_service.domain.retry import (
    PROVIDER_RETRY_POLICY,
    WEBHOOK_RETRY_POLICY,
    RetryPolicy,
    after_failure,
    jittered,
)

FAILED_AT = datetime(2024, 5, 3, 2, 0, tzinfo=UTC)
WEBHOOK_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
]


class TestWebhookSchedule:
    def test_follows_the_standard_webhooks_schedule_then_dead_letters(self):
        decisions = [
            after_failure(
                WEBHOOK_RETRY_POLICY,
                attempts_made=attempt,
                failed_at=FAILED_AT,
                retryable=True,
                draw=0.5,  # the middle of the jitter: no change
            )
            for attempt in range(1, 8)
        ]
        assert [d.retry_at - FAILED_AT for d in decisions[:6] if d.retry_at] == WEBHOOK_DELAYS
        assert [d.next_attempt for d in decisions[:6]] == [2, 3, 4, 5, 6, 7]
        assert decisions[6].dead_letter
        assert "7 attempts" in decisions[6].reason

    def test_keeps_trying_for_hours(self):
        assert sum(WEBHOOK_RETRY_POLICY.delays, timedelta()) == timedelta(
            hours=17, minutes=35, seconds=5
        )
        assert WEBHOOK_RETRY_POLICY.max_attempts == 7

    def test_a_failure_that_cannot_be_helped_goes_straight_to_the_dead_letters(self):
        decision = after_failure(
            WEBHOOK_RETRY_POLICY, attempts_made=1, failed_at=FAILED_AT, retryable=False, draw=0.5
        )
        assert decision.dead_letter
        assert "not retryable" in decision.reason

    @given(
        attempt=st.integers(min_value=1, max_value=6),
        draw=st.floats(min_value=0, max_value=1, exclude_max=True),
    )
    def test_jitter_stays_within_ten_percent(self, attempt, draw):
        decision = after_failure(
            WEBHOOK_RETRY_POLICY,
            attempts_made=attempt,
            failed_at=FAILED_AT,
            retryable=True,
            draw=draw,
        )
        assert decision.retry_at is not None
        delay = decision.retry_at - FAILED_AT
        nominal = WEBHOOK_DELAYS[attempt - 1]
        assert nominal * 0.9 <= delay <= nominal * 1.1

    def test_jitter_spreads_deliveries_that_failed_together(self):
        spread = {
            after_failure(
                WEBHOOK_RETRY_POLICY,
                attempts_made=4,
                failed_at=FAILED_AT,
                retryable=True,
                draw=draw,
            ).retry_at
            for draw in (0.0, 0.25, 0.5, 0.75, 0.99)
        }
        assert len(spread) == 5

    @given(draw=st.floats(min_value=0, max_value=1, exclude_max=True))
    def test_later_retries_never_come_before_earlier_ones(self, draw):
        times = [
            after_failure(
                WEBHOOK_RETRY_POLICY,
                attempts_made=attempt,
                failed_at=FAILED_AT,
                retryable=True,
                draw=draw,
            ).retry_at
            for attempt in range(1, 7)
        ]
        assert times == sorted(times)  # type: ignore[type-var]


class TestPolicies:
    def test_providers_get_a_shorter_exponential_schedule(self):
        assert PROVIDER_RETRY_POLICY.delays == (
            timedelta(seconds=30),
            timedelta(minutes=2),
            timedelta(minutes=8),
            timedelta(minutes=32),
            timedelta(hours=1),
        )

    def test_an_exponential_schedule_is_capped(self):
        policy = RetryPolicy.exponential(
            first=timedelta(seconds=1), factor=10, retries=4, cap=timedelta(seconds=50)
        )
        assert policy.delays == tuple(timedelta(seconds=s) for s in (1, 10, 50, 50))

    @pytest.mark.parametrize(
        ("delays", "jitter", "message"),
        [
            ((), 0.1, "at least one"),
            ((timedelta(0),), 0.1, "positive"),
            ((timedelta(minutes=5), timedelta(seconds=5)), 0.1, "shrink"),
            ((timedelta(seconds=5),), 1.0, "jitter"),
        ],
    )
    def test_refuses_a_policy_that_makes_no_sense(self, delays, jitter, message):
        with pytest.raises(ValueError, match=message):
            RetryPolicy(delays=delays, jitter=jitter)

    def test_refuses_a_draw_outside_the_unit_interval(self):
        with pytest.raises(ValueError, match="draw"):
            jittered(timedelta(seconds=5), 0.1, 1.0)

    def test_refuses_a_naive_failure_time(self):
        with pytest.raises(ValueError, match="naive"):
            after_failure(
                WEBHOOK_RETRY_POLICY,
                attempts_made=1,
                failed_at=datetime(2024, 5, 3),
                retryable=True,
                draw=0.5,
            )
