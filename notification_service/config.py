"""Notification settings (env prefix NOTIFICATION_)."""

from datetime import timedelta
from functools import lru_cache
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from notification_service.domain.surveys import SurveyPolicy
from shared.settings import PiiSettings

# Signs survey links on a developer's machine only: production refuses it.
DEV_ONLY_SURVEY_KEY = "dev-only-survey-signing-key-not-for-production"


class Settings(PiiSettings):
    """Notification's settings.

    A channel without its settings is not configured: a message planned on it is recorded as
    `failed` with the reason "channel not configured", never as sent. `make up` configures
    none, so locally every message is planned, rendered and logged, and none leaves.
    """

    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore", frozen=True)

    database_url: str = (
        "postgresql+asyncpg://notification:notification_local@127.0.0.1:5432/complaints"
    )
    # Email over SMTP: configured when smtp_host is set.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "no-reply@complaints.example.com"
    smtp_from_name: str | None = "投诉服务 Complaints"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_use_tls: bool = False
    smtp_require_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # SMS and app push through an HTTP provider: configured when the endpoint is set.
    sms_endpoint: str | None = None
    sms_api_key: str | None = None
    sms_sender: str | None = None
    sms_honours_idempotency_key: bool = True
    push_endpoint: str | None = None
    push_api_key: str | None = None
    push_sender: str | None = None
    push_honours_idempotency_key: bool = True
    provider_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Merchant webhooks (always configured: each endpoint brings its own URL and secret).
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    webhook_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Endpoints on loopback, private or link-local addresses are refused unless this is set
    # (tests run their receivers on loopback): a merchant must not make us call our own network.
    webhook_allow_internal_urls: bool = False
    # Delays between attempts; empty: the schedules of domain/retry.py (webhooks over ~17.5 h).
    webhook_retry_delays_seconds: list[float] = Field(default_factory=list)
    provider_retry_delays_seconds: list[float] = Field(default_factory=list)
    # The first response the receipt promises (complaint.received carries no deadline yet).
    receipt_first_response_hours: float = Field(default=24.0, gt=0)
    # Staff addresses: "<audience>:<team>" or "<audience>:*" -> email (assigned_agent, supervisor).
    staff_emails: dict[str, str] = Field(default_factory=dict)
    # Progress updates: for open complaints of these triage categories, one every interval
    # until the case is resolved, closed, rejected or withdrawn.
    progress_categories: list[str] = Field(default_factory=lambda: ["logistics"])
    progress_interval_seconds: float = Field(default=86400, gt=0)
    # Satisfaction surveys: signing keys (the last signs, all verify), where the link points,
    # and the timing of domain/surveys.SurveyPolicy in seconds.
    # Empty: a development key outside production; in production surveys are then refused
    # (503) until keys are set.
    survey_secret_keys: list[str] = Field(default_factory=list)
    survey_url_base: str = "https://shop.example.com/survey/"
    survey_invite_after_seconds: float = Field(default=2 * 3600, ge=0)
    survey_valid_seconds: float = Field(default=7 * 86400, gt=0)
    survey_remind_after_seconds: float = Field(default=2 * 86400, gt=0)
    survey_min_time_left_seconds: float = Field(default=86400, ge=0)

    @model_validator(mode="after")
    def _refuse_the_dev_survey_key_in_production(self) -> Self:
        if self.environment == "production" and DEV_ONLY_SURVEY_KEY in self.survey_secret_keys:
            raise ValueError("survey_secret_keys holds the development key; set real ones")
        self.survey_policy()  # a reminder after the link expires is refused at startup
        return self

    def survey_signing_keys(self) -> list[str]:
        """The keys survey links are signed and checked with; empty when none is configured."""
        if self.survey_secret_keys or self.environment == "production":
            return list(self.survey_secret_keys)
        return [DEV_ONLY_SURVEY_KEY]

    def survey_policy(self) -> SurveyPolicy:
        """When surveys are sent, how long their links live and when the reminder goes."""
        return SurveyPolicy(
            invite_after=timedelta(seconds=self.survey_invite_after_seconds),
            valid_for=timedelta(seconds=self.survey_valid_seconds),
            remind_after=timedelta(seconds=self.survey_remind_after_seconds),
            min_time_left_for_reminder=timedelta(seconds=self.survey_min_time_left_seconds),
        )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
