"""Satisfaction surveys: signed expiring tokens, answers, and the one reminder."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from itsdangerous import URLSafeTimedSerializer
from pydantic import ValidationError

from notification_service.domain.surveys import (
    ReasonSubject,
    SurveyAnswer,
    SurveyPolicy,
    SurveyReason,
    SurveyScope,
    SurveyTokenExpiredError,
    SurveyTokenInvalidError,
    SurveyTokens,
    invitation_due_at,
    reminder_due_at,
    should_remind,
)
from shared.clock import ManualClock

KEY = "survey-secret-0123456789abcdef-0123456789"
OTHER_KEY = "another-survey-secret-0123456789abcdef-01"
SCOPE = SurveyScope(
    case_id=UUID("6f9619ff-8b86-4d11-b42d-00c04fc964ff"), complaint_number="202405-000123"
)
INVITED_AT = datetime(2024, 5, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(INVITED_AT)


def tokens(clock: ManualClock, keys: str | list[str] = KEY) -> SurveyTokens:
    return SurveyTokens(keys, valid_for=timedelta(days=7), clock=clock)


class TestTokens:
    def test_a_token_opens_to_its_case_and_complaint(self, clock):
        token = tokens(clock).issue(SCOPE)
        assert tokens(clock).open(token) == SCOPE

    def test_a_token_is_safe_in_a_url(self, clock):
        token = tokens(clock).issue(SCOPE)
        assert all(character.isalnum() or character in "-_." for character in token)

    def test_a_token_works_until_it_expires(self, clock):
        token = tokens(clock).issue(SCOPE)
        clock.advance(timedelta(days=7) - timedelta(seconds=1))
        assert tokens(clock).open(token) == SCOPE
        clock.advance(timedelta(seconds=2))
        with pytest.raises(SurveyTokenExpiredError):
            tokens(clock).open(token)

    def test_a_tampered_token_is_refused(self, clock):
        token = tokens(clock).issue(SCOPE)
        for position in (0, len(token) // 2, len(token) - 1):
            flipped = "A" if token[position] != "A" else "B"
            tampered = token[:position] + flipped + token[position + 1 :]
            with pytest.raises(SurveyTokenInvalidError):
                tokens(clock).open(tampered)

    def test_a_token_signed_with_another_key_is_refused(self, clock):
        token = tokens(clock, OTHER_KEY).issue(SCOPE)
        with pytest.raises(SurveyTokenInvalidError):
            tokens(clock).open(token)

    def test_a_token_signed_for_another_purpose_is_refused(self, clock):
        # Same key, another salt: a token made for something else never opens a survey.
        foreign = URLSafeTimedSerializer(KEY, salt="password-reset").dumps(
            {"v": 1, "case": str(SCOPE.case_id), "n": SCOPE.complaint_number}
        )
        with pytest.raises(SurveyTokenInvalidError):
            tokens(clock).open(foreign)

    def test_a_rotated_key_still_opens_tokens_it_signed(self, clock):
        old_token = tokens(clock, KEY).issue(SCOPE)
        rotated = tokens(clock, [KEY, OTHER_KEY])
        assert rotated.open(old_token) == SCOPE
        new_token = rotated.issue(SCOPE)
        assert tokens(clock, OTHER_KEY).open(new_token) == SCOPE

    @pytest.mark.parametrize("junk", ["", "not-a-token", "a.b.c", "eyJ2IjoxfQ.x.y"])
    def test_junk_is_refused(self, clock, junk):
        with pytest.raises(SurveyTokenInvalidError):
            tokens(clock).open(junk)

    def test_a_short_secret_is_refused(self, clock):
        with pytest.raises(ValueError, match="at least 32"):
            SurveyTokens("short", clock=clock)


class TestAnswers:
    def test_takes_a_score_reasons_and_a_comment(self):
        answer = SurveyAnswer(
            score=2,
            reasons=(SurveyReason.SLOW_RESPONSE, SurveyReason.REMEDY_NOT_DELIVERED),
            comment="  退款一周了还没到  ",
        )
        assert answer.comment == "退款一周了还没到"
        assert answer.subjects == {ReasonSubject.PLATFORM, ReasonSubject.MERCHANT}

    @pytest.mark.parametrize("score", [0, 6, -1])
    def test_a_score_is_one_to_five(self, score):
        with pytest.raises(ValidationError, match="score"):
            SurveyAnswer(score=score)

    def test_a_blank_comment_is_no_comment(self):
        assert SurveyAnswer(score=5, comment="   ").comment is None

    def test_a_comment_is_bounded(self):
        with pytest.raises(ValidationError, match="comment"):
            SurveyAnswer(score=5, comment="好" * 1001)

    def test_a_comment_with_control_characters_is_refused(self):
        with pytest.raises(ValidationError):
            SurveyAnswer(score=5, comment="fine\x00")

    def test_a_reason_is_given_once(self):
        with pytest.raises(ValidationError, match="twice"):
            SurveyAnswer(score=1, reasons=(SurveyReason.UNFAIR_REMEDY, SurveyReason.UNFAIR_REMEDY))

    def test_other_needs_a_comment(self):
        with pytest.raises(ValidationError, match="other"):
            SurveyAnswer(score=3, reasons=(SurveyReason.OTHER,))
        assert SurveyAnswer(score=3, reasons=(SurveyReason.OTHER,), comment="包装太浪费")

    def test_an_unknown_reason_is_refused(self):
        with pytest.raises(ValidationError):
            SurveyAnswer.model_validate({"score": 4, "reasons": ["because"]})

    def test_every_reason_counts_for_someone(self):
        for reason in SurveyReason:
            SurveyAnswer(score=3, reasons=(reason,), comment="x").subjects  # noqa: B018


class TestTiming:
    def test_the_invitation_follows_the_resolution(self):
        resolved_at = datetime(2024, 5, 5, 6, 0, tzinfo=UTC)
        assert invitation_due_at(resolved_at) == resolved_at + timedelta(hours=2)

    def test_one_reminder_two_days_after_the_invitation(self):
        assert reminder_due_at(INVITED_AT) == INVITED_AT + timedelta(days=2)

    def test_no_reminder_when_too_little_time_would_be_left(self):
        policy = SurveyPolicy(valid_for=timedelta(days=2, hours=12), remind_after=timedelta(days=2))
        assert reminder_due_at(INVITED_AT, policy) is None

    @pytest.mark.parametrize(
        ("after", "answered", "reminders_sent", "expected"),
        [
            (timedelta(days=1), False, 0, False),  # too early
            (timedelta(days=2), False, 0, True),
            (timedelta(days=3), False, 0, True),
            (timedelta(days=2), True, 0, False),  # already answered
            (timedelta(days=2), False, 1, False),  # only one reminder
            (timedelta(days=6, hours=1), False, 0, False),  # less than a day left
        ],
    )
    def test_should_remind(self, after, answered, reminders_sent, expected):
        assert (
            should_remind(
                invited_at=INVITED_AT,
                now=INVITED_AT + after,
                answered=answered,
                reminders_sent=reminders_sent,
            )
            is expected
        )

    def test_a_reminder_after_the_link_expires_is_refused_as_a_policy(self):
        with pytest.raises(ValueError, match="before the link expires"):
            SurveyPolicy(valid_for=timedelta(days=1), remind_after=timedelta(days=2))
