"""Triage settings (env prefix TRIAGE_)."""

from decimal import Decimal
from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.events.vocabulary import Priority
from shared.settings import ServiceSettings

# First-response deadlines per priority (DOMAIN.md §2), in hours.
DEFAULT_FIRST_RESPONSE_HOURS: dict[Priority, int] = {
    Priority.URGENT: 2,
    Priority.IMPORTANT: 24,
    Priority.GENERAL: 48,
}


class Settings(ServiceSettings):
    """Triage's settings."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", extra="ignore", frozen=True)

    database_url: str = "postgresql+asyncpg://triage:triage_local@127.0.0.1:5432/complaints"
    first_response_hours: dict[Priority, int] = Field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE_HOURS)
    )
    # A demanded amount at or above this makes a complaint urgent ("large sums").
    large_sum_threshold: Decimal = Decimal("5000")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
