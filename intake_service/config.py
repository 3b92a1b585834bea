"""Intake settings (env prefix INTAKE_)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.events.vocabulary import Channel
from shared.settings import PiiSettings

# First-response promises per channel (DOMAIN.md §1), in seconds.
DEFAULT_RESPONSE_PROMISES: dict[Channel, int] = {
    Channel.CHAT: 60,
    Channel.HOTLINE: 30,
    Channel.APP: 24 * 3600,
    Channel.WEB: 24 * 3600,
    Channel.EMAIL: 24 * 3600,
    Channel.SOCIAL: 24 * 3600,
    Channel.STORE: 24 * 3600,
    Channel.OTHER: 24 * 3600,
}


class Settings(PiiSettings):
    """Intake's settings."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True)

    database_url: str = "postgresql+asyncpg://intake:intake_local@127.0.0.1:5432/complaints"
    idempotency_key_ttl_hours: int = Field(default=24, ge=24)
    response_promise_seconds: dict[Channel, int] = Field(
        default_factory=lambda: dict(DEFAULT_RESPONSE_PROMISES)
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
