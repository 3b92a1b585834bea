"""Merchant webhooks following the Standard Webhooks convention.

Every delivery carries three headers:
- `webhook-id`: the message's idempotency key, the same on every retry, so a receiver that
  remembers the ids it processed applies each message once;
- `webhook-timestamp`: seconds since the epoch when this attempt was signed;
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with the
  endpoint's secret (`whsec_<base64 key>`); several space-separated signatures while a secret
  is being rotated.
The body is `{"type": <message type>, "timestamp": <ISO 8601>, "data": {...}}`.

`verify` is what a receiver runs: it rejects a bad signature, and a timestamp outside the
tolerance either way, so a captured request cannot be replayed later. Any 2xx is success; 410
Gone means the endpoint was retired (no retry); any other answer is a failure to retry on the
webhook schedule (`domain/retry.py`). A timeout after the request went out is `uncertain` and
retried: receivers deduplicate by `webhook-id`.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx

from notification_service.channels.base import (
    DeliveryResult,
    Recipient,
    check_idempotency_key,
    provider_answer,
)
from notification_service.channels.http_provider import classify_transport_error
from notification_service.domain.routing import DeliveryChannel
from notification_service.domain.templates import Message
from shared.clock import Clock, SystemClock

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
# Receivers refuse a timestamp further than this from their clock, in the past or the future.
DEFAULT_TOLERANCE = timedelta(minutes=5)
SECRET_BYTES = 32
# The convention recommends keys of 24 to 64 bytes.
_MIN_SECRET_BYTES = 24
_MAX_SECRET_BYTES = 64
GONE = 410
USER_AGENT = "complaints-platform-webhooks/1"


class WebhookVerificationError(ValueError):
    """A webhook request that must not be trusted: bad or missing signature, stale timestamp."""


def generate_secret() -> str:
    """A new endpoint secret, `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The raw HMAC key of a `whsec_` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is base64 after its prefix") from exc
    if not _MIN_SECRET_BYTES <= len(key) <= _MAX_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds {_MIN_SECRET_BYTES} to {_MAX_SECRET_BYTES} bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one message body at one timestamp."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> None:
    """Checks a received webhook; raises WebhookVerificationError unless it is genuine and fresh."""
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not message_id or not timestamp_text or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or signature")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    current = (now or datetime.now(UTC)).timestamp()
    if abs(current - timestamp) > tolerance.total_seconds():
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance: a replay?")
    try:
        expected = sign(secret, message_id, timestamp, body).encode()
    except ValueError as exc:
        raise WebhookVerificationError(f"unusable secret: {exc}") from exc
    # Several signatures while a secret rotates; any valid v1 one will do.
    for candidate in signatures.split():
        if candidate.startswith(f"{SIGNATURE_VERSION},") and hmac.compare_digest(
            candidate.encode(), expected
        ):
            return
    raise WebhookVerificationError("no valid webhook signature")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal | UUID):
        # Amounts as strings: a float would round them.
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def webhook_message(message_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> Message:
    """The message a webhook carries: `{"type", "timestamp", "data"}` as compact JSON."""
    body = json.dumps(
        {"type": message_type, "timestamp": _json_value(occurred_at), "data": dict(data)},
        default=_json_value,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return Message(subject=message_type, text=body)


class WebhookChannel:
    """Delivers messages to merchant endpoints, signed with each endpoint's secret."""

    name = DeliveryChannel.WEBHOOK.value

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        timeout_seconds: float = 15.0,
        connect_timeout_seconds: float = 5.0,
    ) -> None:
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None
        self._clock = clock or SystemClock()
        self._timeout = httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds)

    async def aclose(self) -> None:
        """Closes the HTTP client this channel created."""
        if self._owns_client:
            await self._client.aclose()

    async def send(
        self, message: Message, recipient: Recipient, idempotency_key: str
    ) -> DeliveryResult:
        """Posts the signed message to the endpoint (`recipient.address`) and classifies it."""
        if recipient.signing_secret is None:
            raise ValueError("a webhook recipient needs its endpoint's signing secret")
        body = message.text.encode()
        timestamp = int(self._clock.now().timestamp())
        headers = signed_headers(
            recipient.signing_secret, check_idempotency_key(idempotency_key), timestamp, body
        )
        try:
            response = await self._client.post(
                recipient.address,
                content=body,
                headers={
                    **headers,
                    "content-type": "application/json",
                    "user-agent": USER_AGENT,
                },
                timeout=self._timeout,
                # A redirect is the endpoint's misconfiguration: following it would send the
                # signed body somewhere the merchant never registered.
                follow_redirects=False,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return classify_transport_error(exc, retry_uncertain=True)
        answer = provider_answer(f"{response.status_code} {response.text}")
        if response.is_success:
            return DeliveryResult.sent(response.headers.get("x-request-id"), answer)
        return DeliveryResult.failed(answer, retryable=response.status_code != GONE)
