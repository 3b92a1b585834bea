"""Who hears what: the routing rules (`notification_service/rules.json`), validated on load.

Each message type (a lifecycle event type, or a message notification raises itself on its own
timers, `notification.*`) names its audiences; each audience names its channels. Whether a
message is essential (reaches customers who opted out of the rest) and urgent (not held back
by quiet hours) is data too. A message type the rules do not list is ignored, never an error:
producers may add events before this service learns them.
"""

import json
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from shared.events.vocabulary import CODE_PATTERN

RULES_RESOURCE = "rules.json"
# Dotted lower_snake_case words: `complaint.received`, `notification.survey_reminder`.
MESSAGE_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
# Payload fields a merchant's webhook may never carry, whatever the file says: contact data
# (sealed or not), who the customer is, and the customer's own words (they may hold contact
# data). Merchants read a complaint's details through resolution's merchant API.
FORBIDDEN_MERCHANT_FIELDS = frozenset(
    {
        "sealed_contact",
        "contact",
        "customer_id",
        "customer_name",
        "name",
        "phone",
        "email",
        "address",
        "description",
        "customer_flags",
        "evidence",
    }
)
# One message per event, recipient and channel: its idempotency key derives from those three.
_DELIVERY_KEY_NAMESPACE = uuid.UUID("3f1d9a52-6c2e-4f0b-9a57-0d1c2b7e8a11")


class RoutingRulesError(ValueError):
    """A rules file that cannot be trusted: unknown audiences or channels, contact data leaks."""


class Audience(StrEnum):
    """Who can be told: the service knows how to find each one's address."""

    CUSTOMER = "customer"
    MERCHANT = "merchant"
    ASSIGNED_AGENT = "assigned_agent"
    SUPERVISOR = "supervisor"


class DeliveryChannel(StrEnum):
    """The channels this service sends on (a customer may also prefer `phone`: a callback)."""

    SMS = "sms"
    APP_PUSH = "app_push"
    EMAIL = "email"
    WEBHOOK = "webhook"


class Importance(StrEnum):
    """Essential messages reach every customer; non-essential ones respect the opt-out."""

    ESSENTIAL = "essential"
    NON_ESSENTIAL = "non_essential"


STAFF_AUDIENCES = frozenset({Audience.ASSIGNED_AGENT, Audience.SUPERVISOR})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudienceRule(_Strict):
    """The channels an audience is reached on."""

    channels: tuple[DeliveryChannel, ...] = Field(min_length=1)
    # The customer's channels are tried in the customer's own order, not the file's.
    follows_customer_preference: bool = False


class MessageRule(_Strict):
    """Who hears one message type, and how much it matters."""

    about: str = Field(min_length=1)
    importance: Importance
    urgent: bool = False
    # Urgent when a fact of the event has one of these values (priority, category...).
    urgent_when: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    recipients: tuple[Audience, ...] = Field(min_length=1)
    merchant_fields: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _refuse_duplicates("recipient", self.recipients)
        for fact, values in self.urgent_when.items():
            if not re.fullmatch(CODE_PATTERN, fact):
                raise ValueError(f"urgent_when fact {fact!r} is not lower_snake_case")
            if not values:
                raise ValueError(f"urgent_when fact {fact!r} lists no values")
        if Audience.MERCHANT in self.recipients:
            if not self.merchant_fields:
                raise ValueError("a message to the merchant must list its merchant_fields")
            leaked = sorted(set(self.merchant_fields) & FORBIDDEN_MERCHANT_FIELDS)
            if leaked:
                raise ValueError(
                    f"merchant_fields may not carry customer data: {', '.join(leaked)}"
                )
            _refuse_duplicates("merchant field", self.merchant_fields)
        elif self.merchant_fields:
            raise ValueError("merchant_fields given but the merchant is not a recipient")
        return self


@dataclass(frozen=True)
class RecipientRoute:
    """One audience of a message and the channels to reach it on, in the file's order."""

    audience: Audience
    channels: tuple[DeliveryChannel, ...]
    follows_customer_preference: bool


@dataclass(frozen=True)
class MessageRoute:
    """What to do with one message: its recipients, whether it is essential and urgent."""

    message_type: str
    essential: bool
    urgent: bool
    recipients: tuple[RecipientRoute, ...]
    merchant_fields: tuple[str, ...]

    def merchant_view(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The payload fields a merchant's webhook carries; fields absent from it are left out."""
        return {name: payload[name] for name in self.merchant_fields if name in payload}


class RoutingRules(_Strict):
    """The validated, versioned rules: audiences and message types."""

    version: int = Field(ge=1)
    comment: str = ""
    audiences: dict[Audience, AudienceRule]
    messages: dict[str, MessageRule]
    _routes: dict[str, tuple[RecipientRoute, ...]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        missing = sorted(set(Audience) - set(self.audiences))
        if missing:
            raise ValueError(f"audiences without channels: {', '.join(missing)}")
        if self.audiences[Audience.MERCHANT].channels != (DeliveryChannel.WEBHOOK,):
            raise ValueError("merchants are reached by webhook only")
        for audience, rule in self.audiences.items():
            _refuse_duplicates(f"channel of {audience}", rule.channels)
            if DeliveryChannel.WEBHOOK in rule.channels and audience is not Audience.MERCHANT:
                raise ValueError(f"{audience} cannot be reached by webhook: merchants only")
            if rule.follows_customer_preference and audience is not Audience.CUSTOMER:
                raise ValueError(f"only the customer has a channel preference, not {audience}")
        for message_type, message in self.messages.items():
            if not re.fullmatch(MESSAGE_TYPE_PATTERN, message_type):
                raise ValueError(f"message type {message_type!r} is not dotted lower_snake_case")
            self._refuse_shared_templates(message_type, message)
        # Built once, after the checks: routing runs for every event.
        self._routes = {
            message_type: tuple(
                RecipientRoute(
                    audience=audience,
                    channels=self.audiences[audience].channels,
                    follows_customer_preference=self.audiences[
                        audience
                    ].follows_customer_preference,
                )
                for audience in message.recipients
            )
            for message_type, message in self.messages.items()
        }
        return self

    def _refuse_shared_templates(self, message_type: str, message: MessageRule) -> None:
        # Templates are per message type and channel: a customer and staff on the same channel
        # of one message would read the same words, written for neither.
        customer_channels = (
            set(self.audiences[Audience.CUSTOMER].channels)
            if Audience.CUSTOMER in message.recipients
            else set()
        )
        for audience in STAFF_AUDIENCES & set(message.recipients):
            shared = customer_channels & set(self.audiences[audience].channels)
            if shared:
                raise ValueError(
                    f"{message_type}: the customer and {audience} would share the "
                    f"{', '.join(sorted(shared))} template"
                )

    @property
    def message_types(self) -> tuple[str, ...]:
        """Every message type the rules route, in file order."""
        return tuple(self.messages)

    def route(
        self, message_type: str, facts: Mapping[str, str | None] | None = None
    ) -> MessageRoute | None:
        """The route of a message, or None for a type the rules do not know (ignore it).

        `facts` are the event's values that can make it urgent (`priority`, `category`).
        """
        message = self.messages.get(message_type)
        if message is None:
            return None
        facts = facts or {}
        urgent = message.urgent or any(
            facts.get(fact) in values for fact, values in message.urgent_when.items()
        )
        return MessageRoute(
            message_type=message_type,
            essential=message.importance is Importance.ESSENTIAL,
            urgent=urgent,
            recipients=self._routes[message_type],
            merchant_fields=message.merchant_fields,
        )

    def channels_in_use(self) -> set[tuple[str, DeliveryChannel]]:
        """Every (message type, channel) the rules can send on: each needs a template."""
        return {
            (message_type, channel)
            for message_type, routes in self._routes.items()
            for route in routes
            for channel in route.channels
        }


def delivery_key(event_id: UUID, audience: str, recipient_id: str, channel: str) -> str:
    """The idempotency key of one message: the same event, recipient and channel, the same key.

    It travels as the provider's Idempotency-Key, the webhook-id and the email's Message-ID, so
    a message sent again after a crash is recognised as the same one.
    """
    name = f"{event_id}|{audience}|{recipient_id}|{channel}"
    return f"msg_{uuid.uuid5(_DELIVERY_KEY_NAMESPACE, name).hex}"


def _refuse_duplicates(what: str, values: Any) -> None:
    repeated = sorted(str(value) for value, count in Counter(values).items() if count > 1)
    if repeated:
        raise ValueError(f"duplicate {what}: {', '.join(repeated)}")


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "rules"
    given = error.get("input")
    # Name the offending word: "Input should be 'customer', ..." alone does not say which.
    shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
    return f"{where}: {error['msg']}{shown}"


def rules_from_dict(data: Any) -> RoutingRules:
    """Validates routing rules in their file form; RoutingRulesError says what is wrong."""
    try:
        return RoutingRules.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise RoutingRulesError(f"invalid routing rules: {problems}") from exc


def rules_from_json(text: str) -> RoutingRules:
    """Parses and validates routing rules from JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RoutingRulesError(f"routing rules are not valid JSON: {exc}") from exc
    return rules_from_dict(data)


@cache
def load_rules() -> RoutingRules:
    """The packaged routing rules, validated once per process."""
    text = resources.files("notification_service").joinpath(RULES_RESOURCE).read_text("utf-8")
    return rules_from_json(text)
