"""Notification settings (env prefix NOTIFICATION_)."""

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from shared.settings import PiiSettings


class Settings(PiiSettings):
    """Notification's settings."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore", frozen=True)

    database_url: str = (
        "postgresql+asyncpg://notification:notification_local@127.0.0.1:5432/complaints"
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
