"""SLA milestones (时效): what a complaint's clocks still have to announce, and when.

A complaint has two clocks, first response and resolution (`domain/deadlines.py`). Each clock
announces a warning once its warning share of the budget is used and a breach once it runs
out, each at most once. The first breach starts the escalation chain (逐级上报): the agent,
then the supervisor, then the head of the team, each step a fixed delay after the one before,
counted from the deadline that was breached, so a late timer never shifts the chain.

Once the complaint has had its first response (an agent acted on its case), the first-response
clock announces nothing more; what it announced before stays announced.

Nothing is due while a complaint is stopped (withdrawn or closed). While its clocks are paused
there is no deadline, so neither warnings nor breaches fall due, and the chain waits: a step
that fell due during the pause is announced when the clocks resume. A deadline that ran out
before the pause is still announced.

The service keeps one durable timer per complaint, due at `next_due_at(...)`; when it fires,
the announcements due by then are made and the timer moves to the next one.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.events.vocabulary import CaseStatus
from triage_service.domain.deadlines import Deadline, Deadlines


class SlaClockName(StrEnum):
    """The two deadlines every complaint runs against."""

    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class AnnouncementKind(StrEnum):
    """What a clock announces."""

    WARNING = "warning"
    BREACH = "breach"
    ESCALATION = "escalation"


class ClockEffect(StrEnum):
    """What a state of the complaint's case does to its clocks."""

    RUN = "run"
    PAUSE = "pause"
    STOP = "stop"


# The case's customer-visible state -> what the clocks do. Waiting on the customer pauses
# them; a completed or closed case stops them for good; any other state runs them, so a
# state this table does not know yet resumes paused clocks rather than freezing them.
CLOCK_EFFECT_BY_CASE_STATE: dict[str, ClockEffect] = {
    CaseStatus.AWAITING_CUSTOMER_CONFIRMATION: ClockEffect.PAUSE,
    CaseStatus.COMPLETED: ClockEffect.STOP,
    CaseStatus.CLOSED: ClockEffect.STOP,
}


def clock_effect(case_state: str) -> ClockEffect:
    """What the clocks do while the case is in `case_state` (open vocabulary: run)."""
    return CLOCK_EFFECT_BY_CASE_STATE.get(case_state, ClockEffect.RUN)


# Who answers for a breached complaint at each step of the chain, in order.
ESCALATION_CHAIN: tuple[str, ...] = ("agent", "supervisor", "head")
# The agent hears at the breach; the supervisor an hour later; the head two hours after that.
DEFAULT_ESCALATION_DELAYS: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(hours=1),
    timedelta(hours=2),
)


@dataclass(frozen=True)
class EscalationPolicy:
    """The chain's steps and the delay before each (the first counted from the breach)."""

    chain: tuple[str, ...] = ESCALATION_CHAIN
    delays: tuple[timedelta, ...] = DEFAULT_ESCALATION_DELAYS

    def __post_init__(self) -> None:
        if len(self.chain) != len(self.delays):
            raise ValueError("give one delay per escalation step")
        if any(delay < timedelta(0) for delay in self.delays):
            raise ValueError("escalation delays cannot be negative")

    def step_due_at(self, level: int, breached_at: datetime) -> datetime:
        """When step `level` (1-based) falls due after a breach at `breached_at`."""
        return breached_at + sum(self.delays[:level], timedelta(0))


@dataclass(frozen=True)
class SlaMarks:
    """What has been announced already: the instants each announcement was due at."""

    first_response_warned_at: datetime | None = None
    first_response_breached_at: datetime | None = None
    resolution_warned_at: datetime | None = None
    resolution_breached_at: datetime | None = None
    escalation_level: int = 0
    # When the customer had their first response: the first-response clock is met then.
    first_responded_at: datetime | None = None

    def warned_at(self, clock: SlaClockName) -> datetime | None:
        """When the clock's warning was due, if it was announced."""
        if clock is SlaClockName.FIRST_RESPONSE:
            return self.first_response_warned_at
        return self.resolution_warned_at

    def breached_at(self, clock: SlaClockName) -> datetime | None:
        """When the clock's deadline passed, if the breach was announced."""
        if clock is SlaClockName.FIRST_RESPONSE:
            return self.first_response_breached_at
        return self.resolution_breached_at

    @property
    def first_breach_at(self) -> datetime | None:
        """The earliest announced breach: where the escalation chain counts from."""
        breaches = (self.first_response_breached_at, self.resolution_breached_at)
        return min((at for at in breaches if at is not None), default=None)

    def after(self, announcement: "Announcement") -> "SlaMarks":
        """The marks once `announcement` has been made."""
        if announcement.kind is AnnouncementKind.ESCALATION:
            return replace(self, escalation_level=max(self.escalation_level, announcement.level))
        warning = announcement.kind is AnnouncementKind.WARNING
        if announcement.clock is SlaClockName.FIRST_RESPONSE:
            if warning:
                return replace(self, first_response_warned_at=announcement.at)
            return replace(self, first_response_breached_at=announcement.at)
        if warning:
            return replace(self, resolution_warned_at=announcement.at)
        return replace(self, resolution_breached_at=announcement.at)


@dataclass(frozen=True)
class Announcement:
    """One thing a complaint's SLA has to announce, and the instant it falls due."""

    kind: AnnouncementKind
    at: datetime
    clock: SlaClockName | None = None
    # The clock's deadline (warnings and breaches).
    due_at: datetime | None = None
    # Escalations: the step (1-based) and who answers for the complaint from then on.
    level: int = 0
    escalated_to: str | None = None


def pending_announcements(
    deadlines: Deadlines | None,
    marks: SlaMarks,
    *,
    paused: bool,
    escalation: EscalationPolicy | None = None,
) -> list[Announcement]:
    """Every announcement not made yet, earliest first; none for a stopped complaint (None)."""
    if deadlines is None:
        return []
    escalation = escalation or EscalationPolicy()
    pending: list[Announcement] = []
    for clock, deadline in _clocks(deadlines):
        if deadline.due_at is None:
            continue  # paused with budget left: no deadline runs
        if clock is SlaClockName.FIRST_RESPONSE and marks.first_responded_at is not None:
            continue  # answered: nothing left to announce on this clock
        if marks.warned_at(clock) is None and deadline.warn_at is not None:
            pending.append(
                Announcement(
                    AnnouncementKind.WARNING, deadline.warn_at, clock, due_at=deadline.due_at
                )
            )
        if marks.breached_at(clock) is None:
            pending.append(
                Announcement(
                    AnnouncementKind.BREACH, deadline.due_at, clock, due_at=deadline.due_at
                )
            )
    breaches = [a.at for a in pending if a.kind is AnnouncementKind.BREACH]
    if marks.first_breach_at is not None:
        breaches.append(marks.first_breach_at)
    chain_start = min(breaches, default=None)
    if chain_start is not None and not paused:
        for level in range(marks.escalation_level + 1, len(escalation.chain) + 1):
            pending.append(
                Announcement(
                    AnnouncementKind.ESCALATION,
                    escalation.step_due_at(level, chain_start),
                    level=level,
                    escalated_to=escalation.chain[level - 1],
                )
            )
    # Ties keep the order built above: a clock's warning before its breach, breaches before
    # the escalation they start.
    return sorted(pending, key=lambda announcement: announcement.at)


def due_announcements(pending: Sequence[Announcement], now: datetime) -> list[Announcement]:
    """The announcements due by `now`, earliest first."""
    return [announcement for announcement in pending if announcement.at <= now]


def next_due_at(pending: Sequence[Announcement]) -> datetime | None:
    """When the next announcement falls due; None when nothing is left to announce."""
    return min((announcement.at for announcement in pending), default=None)


def _clocks(deadlines: Deadlines) -> tuple[tuple[SlaClockName, Deadline], ...]:
    return (
        (SlaClockName.FIRST_RESPONSE, deadlines.first_response),
        (SlaClockName.RESOLUTION, deadlines.resolution),
    )
