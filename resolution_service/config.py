"""Resolution settings (env prefix RESOLUTION_): numbers and presets, never rules."""

from decimal import Decimal
from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Resolution's settings."""

    model_config = SettingsConfigDict(env_prefix="RESOLUTION_", extra="ignore", frozen=True)

    database_url: str = "postgresql+asyncpg://resolution:resolution_local@127.0.0.1:5432/complaints"
    # The business calendar deadlines in working time count on (shared/calendar).
    calendar: str = "cn"
    # What an agent and a supervisor may give without a further approval (money to the customer).
    agent_approval_limit: Decimal = Decimal(500)
    supervisor_approval_limit: Decimal = Decimal(3000)
    # The compensation policy file (resolution_service/policy/<version>.json).
    policy_version: str = "compensation-v1"
    # How long the merchant has to verify ("2 working_days", "48 hours"...).
    verification_response_time: str = "2 working_days"
    # Closure: after the decision, the case closes on its own; appeals within the window.
    auto_close_after: str = "7 days"
    appeal_window: str = "30 days"
    # Test platforms only: these many seconds replace the budgets above, so a deadline or
    # auto-close passes within a test.
    verification_response_seconds: float | None = None
    auto_close_after_seconds: float | None = None
    # Where returns go when the merchant named no address.
    return_address: str = "the merchant's return address on the order"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
