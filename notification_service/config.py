"""Notification settings (env prefix NOTIFICATION_)."""

from functools import lru_cache

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from shared.pii import DEV_ONLY_PII_KEY
from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Notification's settings."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore", frozen=True)

    database_url: str = (
        "postgresql+asyncpg://notification:notification_local@127.0.0.1:5432/complaints"
    )
    pii_key: str = DEV_ONLY_PII_KEY

    @model_validator(mode="after")
    def _refuse_dev_pii_key_in_production(self) -> "Settings":
        if self.environment == "production" and self.pii_key == DEV_ONLY_PII_KEY:
            raise ValueError("NOTIFICATION_PII_KEY must be set to a real key in production")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
