"""Satisfaction surveys (回访): one per case, a signed expiring link, one reminder.

The link carries a token signed with itsdangerous (HMAC, salted for this purpose only) that
names its scope: the case and the complaint number. Whoever holds the link may answer that
survey and nothing else, without signing in; a token altered by one character, signed with
another key or for another purpose, or older than its validity, is refused. Keys rotate: the
newest signs, all of them verify.

An answer is a score from 1 to 5, reasons from a fixed list (each attributed to the agent, the
merchant or the platform, so the results feed their KPIs), and an optional comment. One answer
per case: the service stores the first and refuses the next.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Self
from uuid import UUID

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.clock import Clock, SystemClock, as_utc
from shared.text import FreeText

SURVEY_SALT = "notification.survey.v1"
# Shorter secrets are guessable offline from one link.
MIN_SECRET_LENGTH = 32
MAX_COMMENT_LENGTH = 1000
_PAYLOAD_VERSION = 1


class SurveyTokenError(ValueError):
    """A survey token that cannot be used."""


class SurveyTokenInvalidError(SurveyTokenError):
    """Tampered, signed with an unknown key or for another purpose, or not a token at all."""


class SurveyTokenExpiredError(SurveyTokenError):
    """Genuine but older than its validity."""


@dataclass(frozen=True)
class SurveyScope:
    """What a token lets its holder answer: one case's survey."""

    case_id: UUID
    complaint_number: str


@dataclass(frozen=True)
class SurveyPolicy:
    """When to invite, how long a link lives, and when the one reminder goes."""

    # After resolution, so a refund or a parcel has had time to show up.
    invite_after: timedelta = timedelta(hours=2)
    valid_for: timedelta = timedelta(days=7)
    remind_after: timedelta = timedelta(days=2)
    # A reminder with less time than this left to answer is not worth sending.
    min_time_left_for_reminder: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.remind_after >= self.valid_for:
            raise ValueError("the reminder must come before the link expires")


DEFAULT_SURVEY_POLICY = SurveyPolicy()


def _signer_reading(clock: Clock) -> type[TimestampSigner]:
    # itsdangerous reads time.time(); tokens are issued and checked on the injected clock.
    class ClockedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock.now().timestamp())

    return ClockedSigner


class SurveyTokens:
    """Issues and opens survey tokens with a list of secrets (the newest last signs)."""

    def __init__(
        self,
        secret_keys: str | Sequence[str],
        *,
        valid_for: timedelta = DEFAULT_SURVEY_POLICY.valid_for,
        clock: Clock | None = None,
    ) -> None:
        keys = [secret_keys] if isinstance(secret_keys, str) else list(secret_keys)
        if not keys:
            raise ValueError("survey tokens need at least one secret key")
        if any(len(key) < MIN_SECRET_LENGTH for key in keys):
            raise ValueError(f"survey secret keys are at least {MIN_SECRET_LENGTH} characters")
        if valid_for <= timedelta(0):
            raise ValueError("survey tokens must be valid for some time")
        self.valid_for = valid_for
        self._serializer = URLSafeTimedSerializer(
            keys, salt=SURVEY_SALT, signer=_signer_reading(clock or SystemClock())
        )

    def issue(self, scope: SurveyScope) -> str:
        """A URL-safe token for one case's survey, valid from now for `valid_for`."""
        payload = {"v": _PAYLOAD_VERSION, "case": str(scope.case_id), "n": scope.complaint_number}
        return self._serializer.dumps(payload)

    def open(self, token: str) -> SurveyScope:
        """The scope of a genuine, unexpired token; SurveyTokenError otherwise."""
        try:
            payload: Any = self._serializer.loads(
                token, max_age=int(self.valid_for.total_seconds())
            )
        except SignatureExpired as exc:
            raise SurveyTokenExpiredError("this survey link has expired") from exc
        except BadSignature as exc:
            raise SurveyTokenInvalidError("this survey link is not valid") from exc
        try:
            if payload["v"] != _PAYLOAD_VERSION:
                raise ValueError(f"version {payload['v']}")
            return SurveyScope(case_id=UUID(payload["case"]), complaint_number=str(payload["n"]))
        except (KeyError, TypeError, ValueError) as exc:
            # Signed by us but not a survey payload: only a key shared with another use could.
            raise SurveyTokenInvalidError("this survey link is not valid") from exc


class ReasonSubject(StrEnum):
    """Whose KPI a reason counts for."""

    AGENT = "agent"
    MERCHANT = "merchant"
    PLATFORM = "platform"


class SurveyReason(StrEnum):
    """Why the customer scored as they did: the reasons the survey form offers."""

    FAST_RESPONSE = "fast_response"
    SLOW_RESPONSE = "slow_response"
    HELPFUL_AGENT = "helpful_agent"
    UNHELPFUL_AGENT = "unhelpful_agent"
    CLEAR_COMMUNICATION = "clear_communication"
    POOR_COMMUNICATION = "poor_communication"
    FAIR_REMEDY = "fair_remedy"
    UNFAIR_REMEDY = "unfair_remedy"
    REMEDY_NOT_DELIVERED = "remedy_not_delivered"
    MERCHANT_COOPERATIVE = "merchant_cooperative"
    MERCHANT_UNCOOPERATIVE = "merchant_uncooperative"
    OTHER = "other"


REASON_SUBJECTS: dict[SurveyReason, ReasonSubject] = {
    SurveyReason.FAST_RESPONSE: ReasonSubject.PLATFORM,
    SurveyReason.SLOW_RESPONSE: ReasonSubject.PLATFORM,
    SurveyReason.HELPFUL_AGENT: ReasonSubject.AGENT,
    SurveyReason.UNHELPFUL_AGENT: ReasonSubject.AGENT,
    SurveyReason.CLEAR_COMMUNICATION: ReasonSubject.AGENT,
    SurveyReason.POOR_COMMUNICATION: ReasonSubject.AGENT,
    SurveyReason.FAIR_REMEDY: ReasonSubject.PLATFORM,
    SurveyReason.UNFAIR_REMEDY: ReasonSubject.PLATFORM,
    SurveyReason.REMEDY_NOT_DELIVERED: ReasonSubject.MERCHANT,
    SurveyReason.MERCHANT_COOPERATIVE: ReasonSubject.MERCHANT,
    SurveyReason.MERCHANT_UNCOOPERATIVE: ReasonSubject.MERCHANT,
    SurveyReason.OTHER: ReasonSubject.PLATFORM,
}


class SurveyAnswer(BaseModel):
    """A customer's answer: a score from 1 to 5, reasons, and an optional comment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: int = Field(ge=1, le=5)
    reasons: tuple[SurveyReason, ...] = Field(default=(), max_length=len(SurveyReason))
    comment: FreeText | None = Field(default=None, max_length=MAX_COMMENT_LENGTH)

    @field_validator("comment")
    @classmethod
    def _blank_is_none(cls, comment: str | None) -> str | None:
        stripped = comment.strip() if comment is not None else None
        return stripped or None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.reasons)) != len(self.reasons):
            raise ValueError("a reason is given twice")
        if SurveyReason.OTHER in self.reasons and self.comment is None:
            raise ValueError("the reason 'other' needs a comment saying what it is")
        return self

    @property
    def subjects(self) -> frozenset[ReasonSubject]:
        """Whose KPIs this answer's reasons count for."""
        return frozenset(REASON_SUBJECTS[reason] for reason in self.reasons)


def invitation_due_at(
    resolved_at: datetime, policy: SurveyPolicy = DEFAULT_SURVEY_POLICY
) -> datetime:
    """When the survey invitation of a case resolved at `resolved_at` goes out."""
    return as_utc(resolved_at) + policy.invite_after


def reminder_due_at(
    invited_at: datetime, policy: SurveyPolicy = DEFAULT_SURVEY_POLICY
) -> datetime | None:
    """When the one reminder goes, or None when it would leave too little time to answer."""
    due = as_utc(invited_at) + policy.remind_after
    expires = as_utc(invited_at) + policy.valid_for
    if expires - due < policy.min_time_left_for_reminder:
        return None
    return due


def should_remind(
    *,
    invited_at: datetime,
    now: datetime,
    answered: bool,
    reminders_sent: int,
    policy: SurveyPolicy = DEFAULT_SURVEY_POLICY,
) -> bool:
    """Whether to send the reminder now: unanswered, not yet reminded, due and still useful."""
    if answered or reminders_sent > 0:
        return False
    due = reminder_due_at(invited_at, policy)
    if due is None:
        return False
    now = as_utc(now)
    return due <= now < as_utc(invited_at) + policy.valid_for - policy.min_time_left_for_reminder
