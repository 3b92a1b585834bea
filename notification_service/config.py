"""Notification settings (env prefix NOTIFICATION_)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import PiiSettings


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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
