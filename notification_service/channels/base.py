"""The one interface every channel implements, and what a send can end as.

A send ends `sent` (the provider accepted it), `failed` (it certainly did not go out) or
`uncertain` (the request went out and no answer came back: the message may or may not have
been delivered). `retryable` says whether sending again is safe and may help: a failure before
anything was sent, a provider's temporary refusal, or an uncertain send to a provider that
deduplicates by the idempotency key. An uncertain send to a provider that does not (SMTP) is
not retryable: a second try could deliver the message twice, so it is recorded as uncertain.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from notification_service.domain.redaction import redact
from notification_service.domain.templates import Message

# Provider answers are kept for the delivery log, not whole pages of HTML.
MAX_PROVIDER_RESPONSE_CHARS = 1000
# Keys travel in HTTP headers and Message-IDs: visible ASCII without spaces, bounded.
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,255}")


class DeliveryStatus(StrEnum):
    """How a send ended."""

    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one send, with the provider's answer for the delivery log."""

    status: DeliveryStatus
    provider_reference: str | None
    provider_response: str
    retryable: bool

    @classmethod
    def sent(cls, provider_reference: str | None, provider_response: str) -> "DeliveryResult":
        """The provider accepted the message."""
        return cls(DeliveryStatus.SENT, provider_reference, provider_response, retryable=False)

    @classmethod
    def failed(cls, provider_response: str, *, retryable: bool) -> "DeliveryResult":
        """The message certainly did not go out."""
        return cls(DeliveryStatus.FAILED, None, provider_response, retryable=retryable)

    @classmethod
    def uncertain(cls, provider_response: str, *, retryable: bool) -> "DeliveryResult":
        """The request went out and no answer came back."""
        return cls(DeliveryStatus.UNCERTAIN, None, provider_response, retryable=retryable)


@dataclass(frozen=True)
class Recipient:
    """Where a message goes: an email address, a phone number, a device or user token, a URL."""

    address: str
    # The display name of an email recipient.
    name: str | None = None
    # A merchant endpoint's Standard Webhooks secret (`whsec_<base64>`).
    signing_secret: str | None = None

    def __repr__(self) -> str:
        # Addresses are contact data and secrets are secrets: neither belongs in a log line.
        return "Recipient(<redacted>)"


class Channel(Protocol):
    """Sends one rendered message to one recipient, at most once per idempotency key."""

    name: str

    async def send(
        self, message: Message, recipient: Recipient, idempotency_key: str
    ) -> DeliveryResult:
        """Sends the message; never raises for a delivery problem, it returns the outcome."""
        ...


def check_idempotency_key(key: str) -> str:
    """The key unchanged, or ValueError: it must fit in a header and a Message-ID."""
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValueError("an idempotency key is 1-255 characters of [A-Za-z0-9_.:-]")
    return key


def provider_answer(text: str, *, phones: Iterable[str] = (), emails: Iterable[str] = ()) -> str:
    """A provider's answer fit for the delivery log: contact data redacted, length bounded."""
    # Providers echo the number or address they were given.
    cleaned = redact(text, phones=phones, emails=emails)
    if len(cleaned) > MAX_PROVIDER_RESPONSE_CHARS:
        return cleaned[:MAX_PROVIDER_RESPONSE_CHARS] + "…"
    return cleaned
