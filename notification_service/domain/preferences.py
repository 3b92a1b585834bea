"""Customer preferences, and the rule deciding when and on which channel a message goes.

A customer states the order of channels they want to hear on, may opt out of non-essential
messages (progress updates), and has quiet hours in their own time zone (21:00-08:00 unless
they change them). For each message:
1. a non-essential message to a customer who opted out is skipped, with that reason;
2. the channel is the first of the customer's order that can reach them (a channel they have
   an address for and we can send on), then the platform's default order; a customer who
   prefers a phone call still gets a written message;
3. SMS and app push during quiet hours wait until the quiet hours end, unless the message is
   urgent (a safety case); email is never held back: it does not ring.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from notification_service.domain.routing import DeliveryChannel
from shared.clock import as_utc
from shared.events.vocabulary import ContactChannel

DEFAULT_TIME_ZONE = "Asia/Shanghai"
DEFAULT_QUIET_START = time(21, 0)
DEFAULT_QUIET_END = time(8, 0)
# When a customer's own order reaches none of their channels, these are tried in turn.
DEFAULT_CHANNEL_ORDER: tuple[str, ...] = (
    DeliveryChannel.SMS,
    DeliveryChannel.APP_PUSH,
    DeliveryChannel.EMAIL,
)
# The channels that ring or light up a phone: held back during quiet hours.
INTRUSIVE_CHANNELS = frozenset({DeliveryChannel.SMS, DeliveryChannel.APP_PUSH})


# A local time of day without a zone. JSON Schema's `format: time` is RFC 3339's full-time,
# which requires an offset: documented as a pattern instead, so "21:00:00" validates.
LocalTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$",
            "examples": ["21:00", "08:00:00"],
        }
    ),
]


class QuietHours(BaseModel):
    """A daily span of local time without SMS or push; it may run past midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: LocalTime = DEFAULT_QUIET_START
    end: LocalTime = DEFAULT_QUIET_END

    @model_validator(mode="after")
    def _spans_time(self) -> Self:
        if self.start == self.end:
            raise ValueError("quiet hours start and end at the same time: turn them off instead")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local times, without a zone")
        return self

    def contains(self, local: time) -> bool:
        """Whether a local time of day falls inside the quiet hours (end excluded)."""
        local = local.replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class CustomerPreferences(BaseModel):
    """How a customer wants to be told: channel order, opt-out, quiet hours, zone, language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel_order: tuple[ContactChannel, ...] = Field(default=(), max_length=len(ContactChannel))
    non_essential_opt_out: bool = False
    # None: no quiet hours at all.
    quiet_hours: QuietHours | None = QuietHours()
    time_zone: str = DEFAULT_TIME_ZONE
    locale: str = "zh-CN"

    @field_validator("channel_order")
    @classmethod
    def _no_repeats(cls, order: tuple[ContactChannel, ...]) -> tuple[ContactChannel, ...]:
        if len(set(order)) != len(order):
            raise ValueError("a channel appears twice in the order")
        return order

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}") from None
        return zone

    @classmethod
    def from_preferred_channel(cls, preferred: str | None) -> "CustomerPreferences":
        """The defaults for a customer who only named a channel on their complaint."""
        known = {channel.value: channel for channel in ContactChannel}
        return cls(channel_order=(known[preferred],) if preferred in known else ())


class PlanReason(StrEnum):
    """Why a message goes when it goes, or not at all."""

    SEND_NOW = "send_now"
    URGENT_IN_QUIET_HOURS = "urgent_in_quiet_hours"
    DELAYED_BY_QUIET_HOURS = "delayed_by_quiet_hours"
    OPTED_OUT = "opted_out_of_non_essential"
    NO_REACHABLE_CHANNEL = "no_reachable_channel"


@dataclass(frozen=True)
class DeliveryPlan:
    """The decision for one message to one customer: a channel and a time, or a skip."""

    channel: str | None
    send_at: datetime | None
    reason: PlanReason

    @property
    def skipped(self) -> bool:
        """Whether the message is not sent at all."""
        return self.channel is None


def channel_order(preferences: CustomerPreferences) -> tuple[str, ...]:
    """The customer's channels first, then the defaults, each once."""
    ordered = [channel.value for channel in preferences.channel_order]
    ordered += [channel for channel in DEFAULT_CHANNEL_ORDER if channel not in ordered]
    return tuple(ordered)


def plan_delivery(
    preferences: CustomerPreferences,
    *,
    essential: bool,
    urgent: bool,
    reachable: Collection[str],
    now: datetime,
) -> DeliveryPlan:
    """When and on which channel a message goes to a customer, or why it does not.

    `reachable` are the channels the customer has an address for and this service can send
    on (and has a template for).
    """
    now = as_utc(now)
    if not essential and preferences.non_essential_opt_out:
        return DeliveryPlan(None, None, PlanReason.OPTED_OUT)
    channel = next((option for option in channel_order(preferences) if option in reachable), None)
    if channel is None:
        return DeliveryPlan(None, None, PlanReason.NO_REACHABLE_CHANNEL)
    quiet = preferences.quiet_hours
    zone = ZoneInfo(preferences.time_zone)
    if channel not in INTRUSIVE_CHANNELS or quiet is None or not _is_quiet(quiet, now, zone):
        return DeliveryPlan(channel, now, PlanReason.SEND_NOW)
    if urgent:
        return DeliveryPlan(channel, now, PlanReason.URGENT_IN_QUIET_HOURS)
    return DeliveryPlan(
        channel, end_of_quiet_hours(quiet, now, zone), PlanReason.DELAYED_BY_QUIET_HOURS
    )


def _is_quiet(quiet: QuietHours, at: datetime, zone: ZoneInfo) -> bool:
    return quiet.contains(at.astimezone(zone).time())


def end_of_quiet_hours(quiet: QuietHours, now: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after `now` (inside quiet hours) when they are over, in UTC."""
    now = as_utc(now)
    today = now.astimezone(zone).date()
    candidates = sorted(
        datetime.combine(today + timedelta(days=offset), quiet.end, tzinfo=zone)
        .replace(fold=fold)
        .astimezone(UTC)
        for offset in (-1, 0, 1, 2)
        for fold in (0, 1)
    )
    # Daylight-saving days can move the local end (skipped or repeated hours): take the first
    # one after now at which it really is no longer quiet.
    for candidate in candidates:
        if candidate > now and not _is_quiet(quiet, candidate, zone):
            return candidate
    raise AssertionError("quiet hours never end")  # unreachable: start != end
