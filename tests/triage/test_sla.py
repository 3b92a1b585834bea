"""SLA milestones: warnings and breaches once per clock, the escalation chain, pauses, stops."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.events.vocabulary import CaseStatus, Priority
from triage_service.domain.deadlines import Deadlines, Pause, compute_deadlines
from triage_service.domain.sla import (
    Announcement,
    AnnouncementKind,
    ClockEffect,
    EscalationPolicy,
    SlaClockName,
    SlaMarks,
    clock_effect,
    due_announcements,
    next_due_at,
    pending_announcements,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
FIRST = SlaClockName.FIRST_RESPONSE
RESOLUTION = SlaClockName.RESOLUTION


def urgent(pauses: tuple[Pause, ...] = ()) -> Deadlines:
    """First response 2 h (warning 1 h 36), resolution 24 h (warning 19 h 12), elapsed time."""
    return compute_deadlines(priority=Priority.URGENT, channel="app", received_at=T0, pauses=pauses)


def kinds(announcements: list[Announcement]) -> list[tuple[str, str | None, int]]:
    return [
        (a.kind.value, a.clock.value if a.clock else a.escalated_to, a.level) for a in announcements
    ]


def announce_everything_due(
    marks: SlaMarks, now: datetime, **options: Any
) -> tuple[SlaMarks, list[Announcement]]:
    due = due_announcements(pending_announcements(urgent(), marks, paused=False, **options), now)
    for announcement in due:
        marks = marks.after(announcement)
    return marks, due


class TestWarningsAndBreaches:
    def test_a_new_complaint_first_announces_the_first_response_warning_at_80_percent(self):
        pending = pending_announcements(urgent(), SlaMarks(), paused=False)
        assert next_due_at(pending) == T0 + 2 * HOUR * 0.8
        assert kinds(pending)[0] == ("warning", "first_response", 0)

    def test_each_clock_warns_then_breaches_and_the_breach_starts_the_chain(self):
        pending = pending_announcements(urgent(), SlaMarks(), paused=False)
        assert kinds(pending) == [
            ("warning", "first_response", 0),
            ("breach", "first_response", 0),
            ("escalation", "agent", 1),
            ("escalation", "supervisor", 2),
            ("escalation", "head", 3),
            ("warning", "resolution", 0),
            ("breach", "resolution", 0),
        ]

    def test_what_was_announced_is_never_announced_again(self):
        marks, first = announce_everything_due(SlaMarks(), T0 + 3 * HOUR)
        assert kinds(first) == [
            ("warning", "first_response", 0),
            ("breach", "first_response", 0),
            ("escalation", "agent", 1),
            ("escalation", "supervisor", 2),
        ]
        _, again = announce_everything_due(marks, T0 + 3 * HOUR)
        assert again == []

    def test_a_timer_that_fires_late_announces_everything_it_missed_in_order(self):
        _, due = announce_everything_due(SlaMarks(), T0 + 48 * HOUR)
        assert [a.at for a in due] == sorted(a.at for a in due)
        assert len(due) == 7

    def test_marks_record_the_instant_each_announcement_was_due(self):
        marks, _ = announce_everything_due(SlaMarks(), T0 + 2 * HOUR)
        assert marks.first_response_warned_at == T0 + 2 * HOUR * 0.8
        assert marks.first_response_breached_at == T0 + 2 * HOUR
        assert marks.escalation_level == 1
        assert marks.resolution_warned_at is None

    def test_nothing_is_left_once_everything_was_announced(self):
        marks, _ = announce_everything_due(SlaMarks(), T0 + 100 * HOUR)
        assert pending_announcements(urgent(), marks, paused=False) == []
        assert next_due_at([]) is None


class TestEscalationChain:
    def test_steps_follow_the_breach_by_their_delays_counted_from_the_deadline(self):
        policy = EscalationPolicy(delays=(MINUTE, 10 * MINUTE, 30 * MINUTE))
        pending = pending_announcements(urgent(), SlaMarks(), paused=False, escalation=policy)
        steps = {a.level: a.at for a in pending if a.kind is AnnouncementKind.ESCALATION}
        deadline = T0 + 2 * HOUR
        assert steps == {
            1: deadline + MINUTE,
            2: deadline + 11 * MINUTE,
            3: deadline + 41 * MINUTE,
        }

    def test_the_chain_continues_from_the_recorded_breach_after_the_deadline_moved(self):
        # Re-triaged to general after the breach: the new deadline is later, the chain is not.
        breached = SlaMarks(first_response_breached_at=T0 + 2 * HOUR, escalation_level=1)
        general = compute_deadlines(priority="general", channel="app", received_at=T0)
        pending = pending_announcements(general, breached, paused=False)
        steps = [a for a in pending if a.kind is AnnouncementKind.ESCALATION]
        assert [(a.level, a.at) for a in steps] == [(2, T0 + 3 * HOUR), (3, T0 + 5 * HOUR)]
        assert not [a for a in pending if a.kind is AnnouncementKind.BREACH and a.clock is FIRST]

    def test_a_chain_that_reached_the_head_is_over(self):
        marks = SlaMarks(
            first_response_warned_at=T0,
            first_response_breached_at=T0 + 2 * HOUR,
            escalation_level=3,
        )
        pending = pending_announcements(urgent(), marks, paused=False)
        assert all(a.kind is not AnnouncementKind.ESCALATION for a in pending)

    def test_a_policy_needs_one_delay_per_step_and_none_negative(self):
        with pytest.raises(ValueError, match="one delay per"):
            EscalationPolicy(delays=(MINUTE,))
        with pytest.raises(ValueError, match="negative"):
            EscalationPolicy(delays=(MINUTE, -MINUTE, MINUTE))


class TestPausesAndStops:
    def test_nothing_falls_due_while_paused_with_budget_left(self):
        paused = urgent(pauses=((T0 + HOUR, None),))
        assert pending_announcements(paused, SlaMarks(), paused=True) == []

    def test_a_deadline_that_ran_out_before_the_pause_is_still_announced_but_not_escalated(self):
        paused = urgent(pauses=((T0 + 3 * HOUR, None),))
        pending = pending_announcements(paused, SlaMarks(), paused=True)
        assert kinds(pending) == [
            ("warning", "first_response", 0),
            ("breach", "first_response", 0),
        ]

    def test_resuming_moves_the_deadlines_by_the_paused_time(self):
        resumed = urgent(pauses=((T0 + HOUR, T0 + 4 * HOUR),))
        pending = pending_announcements(resumed, SlaMarks(), paused=False)
        breach = next(a for a in pending if a.kind is AnnouncementKind.BREACH)
        assert breach.at == T0 + 5 * HOUR

    def test_a_stopped_complaint_has_nothing_to_announce(self):
        assert pending_announcements(None, SlaMarks(), paused=False) == []

    @pytest.mark.parametrize(
        ("state", "effect"),
        [
            (CaseStatus.AWAITING_CUSTOMER_CONFIRMATION, ClockEffect.PAUSE),
            (CaseStatus.PROCESSING, ClockEffect.RUN),
            (CaseStatus.PENDING_ACCEPTANCE, ClockEffect.RUN),
            (CaseStatus.COMPLETED, ClockEffect.STOP),
            (CaseStatus.CLOSED, ClockEffect.STOP),
            ("awaiting_merchant_evidence", ClockEffect.RUN),
        ],
    )
    def test_the_case_state_decides_what_the_clocks_do(self, state: str, effect: ClockEffect):
        assert clock_effect(state) is effect


@settings(max_examples=60, deadline=None)
@given(
    first_fire=st.integers(min_value=0, max_value=60 * 60),
    gaps=st.lists(st.integers(min_value=0, max_value=6 * 60 * 60), min_size=1, max_size=8),
)
def test_however_the_timer_fires_each_announcement_is_made_exactly_once(
    first_fire: int, gaps: list[int]
):
    """Firing at any instants, late or early, announces each milestone once, in time order."""
    marks = SlaMarks()
    made: list[Announcement] = []
    now = T0 + timedelta(seconds=first_fire)
    for gap in [0, *gaps, 10**6]:
        now += timedelta(seconds=gap)
        marks, due = announce_everything_due(marks, now)
        made.extend(due)
    assert len(made) == 7
    assert len({(a.kind, a.clock, a.level) for a in made}) == 7
    assert [a.at for a in made] == sorted(a.at for a in made)


class TestFirstResponse:
    def test_a_first_response_silences_the_first_response_clock_only(self):
        answered = SlaMarks(first_responded_at=T0 + 30 * MINUTE)
        pending = pending_announcements(urgent(), answered, paused=False)
        assert {a.clock for a in pending if a.clock is not None} == {RESOLUTION}
        # The resolution clock still warns, breaches and starts the chain.
        assert kinds(pending)[0] == ("warning", "resolution", 0)
        assert any(a.kind is AnnouncementKind.ESCALATION for a in pending)

    def test_a_breach_announced_before_the_response_stays_and_keeps_the_chain(self):
        late = SlaMarks(
            first_response_warned_at=T0 + 96 * MINUTE,
            first_response_breached_at=T0 + 2 * HOUR,
            first_responded_at=T0 + 3 * HOUR,
        )
        pending = pending_announcements(urgent(), late, paused=False)
        escalations = [a for a in pending if a.kind is AnnouncementKind.ESCALATION]
        assert escalations[0].at == T0 + 2 * HOUR  # counted from the breach already made
        assert all(a.clock is not SlaClockName.FIRST_RESPONSE for a in pending)
