"""Customer preferences: which channel, when (quiet hours in the customer's zone), or a skip."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from notification_service.domain.preferences import (
    CustomerPreferences,
    DeliveryPlan,
    PlanReason,
    QuietHours,
    channel_order,
    plan_delivery,
)

ALL = {"sms", "app_push", "email"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
ZONES = [
    "Asia/Shanghai",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",  # a half-hour daylight-saving shift
    "Pacific/Chatham",
    "Asia/Kolkata",
]


def local(hour: int, minute: int = 0) -> datetime:
    """An instant at this Shanghai wall-clock time on 3 May 2024."""
    return datetime(2024, 5, 3, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def plan(
    preferences: CustomerPreferences | None = None,
    *,
    at: datetime,
    essential: bool = True,
    urgent: bool = False,
    reachable: set[str] = ALL,
) -> DeliveryPlan:
    return plan_delivery(
        preferences or CustomerPreferences(channel_order=("sms", "email")),
        essential=essential,
        urgent=urgent,
        reachable=reachable,
        now=at,
    )


class TestChannels:
    def test_the_customers_first_reachable_channel_is_used(self):
        assert plan(at=local(12)).channel == "sms"
        assert plan(at=local(12), reachable={"email", "app_push"}).channel == "email"

    def test_a_customer_who_prefers_a_call_still_gets_a_written_message(self):
        preferences = CustomerPreferences(channel_order=("phone",))
        assert channel_order(preferences) == ("phone", "sms", "app_push", "email")
        assert plan(preferences, at=local(12)).channel == "sms"

    def test_no_reachable_channel_is_a_skip_with_its_reason(self):
        decision = plan(at=local(12), reachable=set())
        assert decision.skipped
        assert decision.reason is PlanReason.NO_REACHABLE_CHANNEL

    def test_defaults_follow_the_channel_named_on_the_complaint(self):
        preferences = CustomerPreferences.from_preferred_channel("email")
        assert channel_order(preferences)[0] == "email"
        assert CustomerPreferences.from_preferred_channel("fax").channel_order == ()


class TestOptOut:
    def test_opted_out_customers_get_no_progress_updates(self):
        preferences = CustomerPreferences(non_essential_opt_out=True)
        decision = plan(preferences, at=local(12), essential=False)
        assert decision.skipped
        assert decision.reason is PlanReason.OPTED_OUT

    def test_opted_out_customers_still_get_receipts_and_decisions(self):
        preferences = CustomerPreferences(non_essential_opt_out=True)
        assert plan(preferences, at=local(12), essential=True).channel == "sms"


class TestQuietHours:
    def test_an_sms_at_night_waits_until_eight_in_the_morning(self):
        decision = plan(at=local(22, 30))
        assert decision.channel == "sms"
        assert decision.reason is PlanReason.DELAYED_BY_QUIET_HOURS
        assert decision.send_at == datetime(2024, 5, 4, 8, 0, tzinfo=SHANGHAI)

    def test_an_sms_after_midnight_waits_until_eight_the_same_morning(self):
        decision = plan(at=local(3))
        assert decision.send_at == datetime(2024, 5, 3, 8, 0, tzinfo=SHANGHAI)

    def test_quiet_hours_end_at_eight_sharp(self):
        assert plan(at=local(8)).reason is PlanReason.SEND_NOW
        assert plan(at=local(20, 59)).reason is PlanReason.SEND_NOW
        assert plan(at=local(21)).reason is PlanReason.DELAYED_BY_QUIET_HOURS

    def test_an_urgent_message_is_not_held_back(self):
        decision = plan(at=local(23), urgent=True)
        assert decision.send_at == local(23)
        assert decision.reason is PlanReason.URGENT_IN_QUIET_HOURS

    def test_email_is_never_held_back(self):
        preferences = CustomerPreferences(channel_order=("email", "sms"))
        decision = plan(preferences, at=local(23))
        assert decision.channel == "email"
        assert decision.send_at == local(23)

    def test_quiet_hours_are_the_customers_own_local_hours(self):
        london = CustomerPreferences(time_zone="Europe/London")
        # 23:00 in Shanghai is 16:00 in London (summer time).
        assert plan(london, at=local(23)).reason is PlanReason.SEND_NOW

    def test_quiet_hours_can_be_turned_off_or_moved(self):
        assert plan(CustomerPreferences(quiet_hours=None), at=local(23)).send_at == local(23)
        siesta = CustomerPreferences(quiet_hours=QuietHours(start=time(13), end=time(15)))
        assert plan(siesta, at=local(14)).send_at == local(15)
        assert plan(siesta, at=local(23)).send_at == local(23)

    def test_an_end_that_a_spring_forward_skips_moves_past_the_gap(self):
        # New York, 10 March 2024: 02:00 jumps to 03:00, so 02:30 never happens.
        new_york = ZoneInfo("America/New_York")
        preferences = CustomerPreferences(
            quiet_hours=QuietHours(start=time(21), end=time(2, 30)), time_zone="America/New_York"
        )
        now = datetime(2024, 3, 10, 1, 45, tzinfo=new_york)
        decision = plan(preferences, at=now)
        assert decision.send_at is not None
        assert decision.send_at > now
        assert decision.send_at.astimezone(new_york).time() >= time(3)

    def test_an_end_in_a_repeated_hour_waits_for_the_second_pass(self):
        # New York, 3 November 2024: 01:00-02:00 happens twice; it is 01:15 the second time.
        new_york = ZoneInfo("America/New_York")
        preferences = CustomerPreferences(
            quiet_hours=QuietHours(start=time(21), end=time(1, 30)), time_zone="America/New_York"
        )
        now = datetime(2024, 11, 3, 1, 15, fold=1, tzinfo=new_york)
        decision = plan(preferences, at=now)
        assert decision.send_at == now.astimezone(UTC) + timedelta(minutes=15)

    @given(
        instant=st.datetimes(
            min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
        ),
        zone=st.sampled_from(ZONES),
        start=st.times(),
        end=st.times(),
        channel=st.sampled_from(sorted(ALL)),
    )
    def test_nothing_intrusive_is_sent_in_quiet_hours_and_nothing_waits_past_them(
        self, instant, zone, start, end, channel
    ):
        if start == end:
            return
        quiet = QuietHours(start=start, end=end)
        preferences = CustomerPreferences(
            channel_order=(channel,), quiet_hours=quiet, time_zone=zone
        )
        decision = plan(preferences, at=instant, reachable={channel})
        assert decision.channel == channel
        assert decision.send_at is not None
        assert decision.send_at >= instant
        # At most a day later, plus a daylight-saving shift.
        assert decision.send_at - instant <= timedelta(hours=25)
        quiet_now = quiet.contains(instant.astimezone(ZoneInfo(zone)).time())
        if channel == "email" or not quiet_now:
            assert decision.send_at == instant
        else:
            assert decision.reason is PlanReason.DELAYED_BY_QUIET_HOURS
            assert not quiet.contains(decision.send_at.astimezone(ZoneInfo(zone)).time())

    @given(
        instant=st.datetimes(
            min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
        ),
        zone=st.sampled_from(ZONES),
    )
    def test_urgent_messages_always_go_at_once(self, instant, zone):
        preferences = CustomerPreferences(channel_order=("sms",), time_zone=zone)
        assert plan(preferences, at=instant, urgent=True).send_at == instant


class TestValidation:
    def test_refuses_an_unknown_time_zone(self):
        with pytest.raises(ValidationError, match="time zone"):
            CustomerPreferences(time_zone="Mars/Olympus")

    def test_refuses_a_channel_twice(self):
        with pytest.raises(ValidationError, match="twice"):
            CustomerPreferences(channel_order=("sms", "sms"))

    def test_refuses_an_unknown_channel(self):
        with pytest.raises(ValidationError):
            CustomerPreferences(channel_order=("fax",))  # type: ignore[arg-type]

    def test_refuses_quiet_hours_that_start_when_they_end(self):
        with pytest.raises(ValidationError, match="same time"):
            QuietHours(start=time(8), end=time(8))

    def test_refuses_a_naive_now(self):
        with pytest.raises(ValueError, match="naive"):
            plan(at=datetime(2024, 5, 3, 12))
