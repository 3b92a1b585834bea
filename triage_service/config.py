"""Triage settings (env prefix TRIAGE_): the numbers the rules in `domain/` compare against.

Durations are floats, so a test platform can shrink an SLA to seconds with the same settings
production uses (`TRIAGE_FIRST_RESPONSE_HOURS='{"urgent": 0.001, ...}'` is 3.6 seconds).
"""

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TypeVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from shared.calendar import Calendar, calendar_for
from shared.events.vocabulary import Channel, Priority
from shared.settings import ServiceSettings
from triage_service.domain.classifier import DEFAULT_MIN_CONFIDENCE
from triage_service.domain.deadlines import DeadlinePolicy
from triage_service.domain.priority import PriorityRules
from triage_service.domain.sla import ESCALATION_CHAIN, EscalationPolicy

HOUR_S = 3600.0
K = TypeVar("K", bound=str)

# SLA budgets per priority (DOMAIN.md §2; why these in triage_service/domain/deadlines.py).
DEFAULT_FIRST_RESPONSE_HOURS: dict[Priority, float] = {
    Priority.URGENT: 2,
    Priority.IMPORTANT: 24,
    Priority.GENERAL: 48,
}
DEFAULT_RESOLUTION_HOURS: dict[Priority, float] = {
    Priority.URGENT: 24,
    Priority.IMPORTANT: 72,
    Priority.GENERAL: 7 * 24,
}
# Live and public channels: the customer hears back within a day whatever the priority.
DEFAULT_FIRST_RESPONSE_CAP_HOURS: dict[str, float] = {
    Channel.CHAT: 24,
    Channel.HOTLINE: 24,
    Channel.SOCIAL: 24,
}
# Minutes before each escalation step (agent, supervisor, head), the first after the breach.
DEFAULT_ESCALATION_DELAY_MINUTES: tuple[float, float, float] = (0, 60, 120)


class Settings(ServiceSettings):
    """Triage's settings."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", extra="ignore", frozen=True)

    database_url: str = "postgresql+asyncpg://triage:triage_local@127.0.0.1:5432/complaints"

    # Classification: below this confidence a complaint goes to the manual-triage queue.
    min_confidence: float = Field(default=DEFAULT_MIN_CONFIDENCE, gt=0, lt=1)

    # Priority. A demanded, ordered or mentioned amount at or above this is urgent.
    large_sum_threshold: Decimal = Field(default=Decimal("5000"), gt=0)
    # K customers complaining about one merchant or SKU within the window: a group complaint.
    group_threshold: int = Field(default=5, ge=2)
    group_window_hours: float = Field(default=24, gt=0)
    # A customer with this many earlier complaints within the lookback is a repeat complainant.
    repeat_threshold: int = Field(default=2, ge=1)
    repeat_lookback_days: float = Field(default=365, gt=0)

    # SLA clocks.
    first_response_hours: dict[Priority, float] = Field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE_HOURS)
    )
    resolution_hours: dict[Priority, float] = Field(
        default_factory=lambda: dict(DEFAULT_RESOLUTION_HOURS)
    )
    first_response_cap_hours_by_channel: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE_CAP_HOURS)
    )
    # The share of a budget used when the warning is announced.
    warning_fraction: float = Field(default=0.8, gt=0, lt=1)
    escalation_delay_minutes: tuple[float, float, float] = Field(
        default=DEFAULT_ESCALATION_DELAY_MINUTES
    )
    # A region of shared/calendar/data (e.g. "cn"): important and general deadlines then count
    # business time. Empty or "24x7": every deadline counts elapsed time.
    calendar_region: str = ""

    @field_validator("first_response_hours", "resolution_hours")
    @classmethod
    def _every_priority_has_a_budget(cls, budgets: dict[Priority, float]) -> dict[Priority, float]:
        missing = set(Priority) - set(budgets)
        if missing:
            raise ValueError(f"no budget for {', '.join(sorted(missing))}")
        if any(hours <= 0 for hours in budgets.values()):
            raise ValueError("budgets must be positive")
        return budgets

    @field_validator("escalation_delay_minutes")
    @classmethod
    def _delays_not_negative(cls, delays: tuple[float, ...]) -> tuple[float, ...]:
        if any(minutes < 0 for minutes in delays):
            raise ValueError("escalation delays cannot be negative")
        return delays

    def deadline_policy(self) -> DeadlinePolicy:
        """The deadline rules' numbers."""
        return DeadlinePolicy(
            first_response=_hours(self.first_response_hours),
            resolution=_hours(self.resolution_hours),
            first_response_cap_by_channel=_hours(self.first_response_cap_hours_by_channel),
            warning_fraction=self.warning_fraction,
        )

    def escalation_policy(self) -> EscalationPolicy:
        """The escalation chain's delays."""
        return EscalationPolicy(
            chain=ESCALATION_CHAIN,
            delays=tuple(timedelta(minutes=minutes) for minutes in self.escalation_delay_minutes),
        )

    def priority_rules(self) -> PriorityRules:
        """The priority rules' thresholds."""
        return PriorityRules(
            large_sum_threshold=self.large_sum_threshold,
            group_threshold=self.group_threshold,
            repeat_threshold=self.repeat_threshold,
        )

    def calendar(self) -> Calendar:
        """The business calendar deadlines count in (24x7 when none is configured)."""
        return calendar_for(self.calendar_region)

    @property
    def group_window(self) -> timedelta:
        """How close in time the complaints of one group are."""
        return timedelta(hours=self.group_window_hours)

    @property
    def repeat_lookback(self) -> timedelta:
        """How far back a customer's earlier complaints count."""
        return timedelta(days=self.repeat_lookback_days)


def _hours(budgets: Mapping[K, float]) -> dict[K, timedelta]:
    return {key: timedelta(seconds=hours * HOUR_S) for key, hours in budgets.items()}


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
