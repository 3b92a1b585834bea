"""Merchant verification (商家核实): the merchant answers by a deadline, or the case goes on.

An agent asks the merchant to verify the complaint (outbound records, QC reports, its own
policy). The merchant accepts responsibility or disputes it with evidence, within a deadline
in business time. When the deadline passes unanswered, the policy's default outcome applies:
the case proceeds against the merchant, as the marketplaces do when a seller stays silent.

Default deadline: 2 working days (Lazada's merchant deadline). The presets name the other
marketplaces' choices so a deployment can pick one: WeChat mini-stores 48 hours, Amazon A-to-z
72 hours, Shopee 2 days.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from resolution_service.domain.timing import TimeBudget, TimeUnit
from shared.calendar import Calendar, SlaClock
from shared.clock import as_utc


class VerificationError(ValueError):
    """An answer or a deadline event that does not fit the request."""


class Stance(StrEnum):
    """The merchant's answer to the complaint."""

    ACCEPT = "accept"
    DISPUTE = "dispute"


class SilenceOutcome(StrEnum):
    """What happens when the merchant does not answer in time."""

    PROCEEDS_AGAINST_MERCHANT = "proceeds_against_merchant"


class VerificationResult(StrEnum):
    """How a verification ended."""

    ACCEPTED = "accepted"
    DISPUTED = "disputed"
    DEADLINE_MISSED = "deadline_missed"


RESPONSE_TIME_PRESETS: dict[str, TimeBudget] = {
    "lazada": TimeBudget(2, TimeUnit.WORKING_DAYS),
    "wechat_store": TimeBudget(48, TimeUnit.HOURS),
    "amazon_a_to_z": TimeBudget(72, TimeUnit.HOURS),
    "shopee": TimeBudget(2, TimeUnit.DAYS),
}
DEFAULT_RESPONSE_TIME = RESPONSE_TIME_PRESETS["lazada"]


@dataclass(frozen=True)
class VerificationPolicy:
    """How long a merchant has, what silence means, and what a dispute must bring."""

    response_time: TimeBudget = DEFAULT_RESPONSE_TIME
    when_silent: SilenceOutcome = SilenceOutcome.PROCEEDS_AGAINST_MERCHANT
    # A dispute without evidence is a denial, not a verification: it is refused.
    dispute_needs_evidence: bool = True


@dataclass(frozen=True)
class VerificationRequest:
    """A request sent to the merchant, with its running clock and deadline."""

    requested_at: datetime
    due_at: datetime
    clock: SlaClock
    counts_business_time: bool
    questions: tuple[str, ...] = ()


@dataclass(frozen=True)
class MerchantAnswer:
    """What the merchant said: a stance, a statement and evidence ids."""

    stance: Stance
    answered_at: datetime
    statement: str = ""
    evidence_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerificationOutcome:
    """How the verification ended and what it means for the case."""

    result: VerificationResult
    proceeds_against_merchant: bool
    reason: str
    late: bool = False
    answer: MerchantAnswer | None = None


def request_verification(
    *,
    requested_at: datetime,
    calendar: Calendar,
    policy: VerificationPolicy = VerificationPolicy(),
    questions: tuple[str, ...] = (),
) -> VerificationRequest:
    """A verification request sent at `requested_at`, due after the policy's response time."""
    budget = policy.response_time
    return VerificationRequest(
        requested_at=as_utc(requested_at),
        due_at=budget.due_at(requested_at, calendar),
        clock=budget.clock(requested_at, calendar),
        counts_business_time=budget.counts_business_time,
        questions=questions,
    )


def is_overdue(request: VerificationRequest, at: datetime) -> bool:
    """True from the deadline on."""
    return as_utc(at) >= request.due_at


def record_answer(
    request: VerificationRequest,
    answer: MerchantAnswer,
    *,
    policy: VerificationPolicy = VerificationPolicy(),
) -> VerificationOutcome:
    """The outcome of the merchant's answer; a dispute must carry evidence."""
    if as_utc(answer.answered_at) < request.requested_at:
        raise VerificationError("the answer is dated before the request")
    disputed = answer.stance is Stance.DISPUTE
    if disputed and policy.dispute_needs_evidence and not answer.evidence_ids:
        raise VerificationError(
            "a dispute needs evidence (outbound records, QC reports, chat logs)"
        )
    # An answer that beats the timer still counts: the timer, not the clock, closes the door.
    late = is_overdue(request, answer.answered_at)
    if answer.stance is Stance.ACCEPT:
        return VerificationOutcome(
            VerificationResult.ACCEPTED,
            proceeds_against_merchant=True,
            reason="the merchant accepted responsibility",
            late=late,
            answer=answer,
        )
    return VerificationOutcome(
        VerificationResult.DISPUTED,
        proceeds_against_merchant=False,
        reason=f"the merchant disputed with {len(answer.evidence_ids)} piece(s) of evidence",
        late=late,
        answer=answer,
    )


def deadline_missed(
    request: VerificationRequest,
    at: datetime,
    *,
    policy: VerificationPolicy = VerificationPolicy(),
) -> VerificationOutcome:
    """The default outcome when the deadline passed unanswered; refused before the deadline."""
    if not is_overdue(request, at):
        raise VerificationError(f"the merchant has until {request.due_at.isoformat()}")
    return VerificationOutcome(
        VerificationResult.DEADLINE_MISSED,
        proceeds_against_merchant=policy.when_silent is SilenceOutcome.PROCEEDS_AGAINST_MERCHANT,
        reason=(
            f"the merchant did not answer within {policy.response_time} "
            f"(due {request.due_at.isoformat()}): the case proceeds against the merchant"
        ),
    )
