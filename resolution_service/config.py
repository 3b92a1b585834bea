"""Resolution settings (env prefix RESOLUTION_)."""

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Resolution's settings."""

    model_config = SettingsConfigDict(env_prefix="RESOLUTION_", extra="ignore", frozen=True)

    database_url: str = "postgresql+asyncpg://resolution:resolution_local@127.0.0.1:5432/complaints"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
