"""SMS and app push through an HTTP provider (httpx).

The adapter speaks one small JSON contract that a provider gateway implements:

    POST <endpoint>
    Authorization: Bearer <api key>
    Idempotency-Key: <the message's key>
    {"channel": "sms", "to": "+8613800138000", "title": null, "text": "...", "sender": "..."}

    2xx {"id": "<provider's message id>", ...}

The same key with the same body answers with the first send's result, so a send whose answer
was lost is retried safely. Classification: connection failures and timeouts before the request
was written failed and are retried; a read timeout, a dropped connection after the request, or
a 500/502/504 (a gateway may have passed it on) leave the outcome unknown: `uncertain`, retried
with the same key. 408/425/429/503 are temporary refusals; other 4xx are final.
"""

import json
from dataclasses import dataclass
from typing import Any

import httpx

from notification_service.channels.base import (
    DeliveryResult,
    Recipient,
    check_idempotency_key,
    provider_answer,
)
from notification_service.domain.routing import DeliveryChannel
from notification_service.domain.templates import Message

TEMPORARY_REFUSALS = frozenset({408, 425, 429, 503})
# The provider may have acted before the error: a gateway in front of it timed out or failed.
OUTCOME_UNKNOWN = frozenset({500, 502, 504})
# A concurrent request with the same key is still in flight: it may yet succeed.
KEY_IN_USE = 409
_REFERENCE_FIELDS = ("id", "message_id", "reference")


@dataclass(frozen=True)
class HttpProviderSettings:
    """One provider endpoint and its credentials."""

    endpoint: str
    api_key: str
    # The registered sender (an SMS signature or an app id), when the provider needs one.
    sender: str | None = None
    connect_timeout_seconds: float = 5.0
    timeout_seconds: float = 10.0
    # Whether the provider deduplicates by Idempotency-Key: only then is an uncertain send
    # retried; otherwise it is recorded as uncertain and left alone.
    honours_idempotency_key: bool = True

    def __repr__(self) -> str:
        return f"HttpProviderSettings(endpoint={self.endpoint!r}, api_key=<hidden>)"


class HttpProviderChannel:
    """A channel (SMS or app push) served by an HTTP provider."""

    def __init__(
        self,
        channel: DeliveryChannel,
        settings: HttpProviderSettings,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if channel not in (DeliveryChannel.SMS, DeliveryChannel.APP_PUSH):
            raise ValueError(f"an HTTP provider serves sms or app_push, not {channel}")
        self.name = channel.value
        self._settings = settings
        # One pooled client per channel; the caller may share its own (and then closes it).
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None

    async def aclose(self) -> None:
        """Closes the HTTP client this channel created."""
        if self._owns_client:
            await self._client.aclose()

    def request_body(self, message: Message, recipient: Recipient) -> dict[str, Any]:
        """The JSON the provider receives."""
        return {
            "channel": self.name,
            "to": recipient.address,
            "title": message.subject,
            "text": message.text,
            "sender": self._settings.sender,
        }

    async def send(
        self, message: Message, recipient: Recipient, idempotency_key: str
    ) -> DeliveryResult:
        """Posts the message to the provider and classifies the answer."""
        settings = self._settings
        timeout = httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)
        phones = [recipient.address] if self.name == DeliveryChannel.SMS else []
        try:
            response = await self._client.post(
                settings.endpoint,
                json=self.request_body(message, recipient),
                headers={
                    "Authorization": f"Bearer {settings.api_key}",
                    "Idempotency-Key": check_idempotency_key(idempotency_key),
                },
                timeout=timeout,
                follow_redirects=False,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return classify_transport_error(
                exc, retry_uncertain=settings.honours_idempotency_key, phones=phones
            )
        answer = provider_answer(f"{response.status_code} {response.text}", phones=phones)
        if response.is_success:
            return DeliveryResult.sent(_reference(response), answer)
        if response.status_code in OUTCOME_UNKNOWN or response.status_code == KEY_IN_USE:
            return DeliveryResult.uncertain(answer, retryable=settings.honours_idempotency_key)
        return DeliveryResult.failed(answer, retryable=response.status_code in TEMPORARY_REFUSALS)


def classify_transport_error(
    exc: httpx.HTTPError | httpx.InvalidURL,
    *,
    retry_uncertain: bool,
    phones: list[str] | None = None,
) -> DeliveryResult:
    """What a transport error means for a send: failed before sending, or outcome unknown."""
    answer = provider_answer(f"{type(exc).__name__}: {exc}", phones=phones or [])
    # Nothing reached the provider: no connection, no pooled connection free, or the request
    # could not be written whole (an incomplete request is never acted on).
    if isinstance(
        exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.WriteTimeout
    ):
        return DeliveryResult.failed(answer, retryable=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.LocalProtocolError):
        return DeliveryResult.failed(answer, retryable=False)
    # ReadTimeout, ReadError, RemoteProtocolError...: the request went out, no answer came.
    return DeliveryResult.uncertain(answer, retryable=retry_uncertain)


def _reference(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    for field in _REFERENCE_FIELDS:
        value = body.get(field)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def sms_channel(
    settings: HttpProviderSettings, *, client: httpx.AsyncClient | None = None
) -> HttpProviderChannel:
    """The SMS channel on an HTTP provider."""
    return HttpProviderChannel(DeliveryChannel.SMS, settings, client=client)


def app_push_channel(
    settings: HttpProviderSettings, *, client: httpx.AsyncClient | None = None
) -> HttpProviderChannel:
    """The app push channel on an HTTP provider (the recipient is a device or user token)."""
    return HttpProviderChannel(DeliveryChannel.APP_PUSH, settings, client=client)
