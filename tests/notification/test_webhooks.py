"""Merchant webhooks (Standard Webhooks) against a real local HTTP server; signatures checked
by our `verify` and by the reference `standardwebhooks` library.
"""

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as ReferenceError_

from notification_service.channels import DeliveryStatus, Recipient
from notification_service.channels.webhook import (
    WebhookChannel,
    WebhookVerificationError,
    generate_secret,
    secret_key,
    sign,
    signed_headers,
    verify,
    webhook_message,
)
from notification_service.domain.routing import load_rules
from notification_service.domain.templates import Message
from shared.clock import ManualClock
from tests.notification.conftest import HttpReceiver, free_port

KEY = "msg_7e1f0c2b9a8d4e6f8a0b1c2d3e4f5a6b"
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OCCURRED_AT = datetime(2024, 5, 3, 2, 0, tzinfo=UTC)


def case_opened() -> Message:
    route = load_rules().route("case.opened")
    assert route is not None
    payload = {
        "case_id": UUID("6f9619ff-8b86-4d11-b42d-00c04fc964ff"),
        "complaint_number": "202405-000123",
        "merchant_id": "m-88",
        "priority": "important",
        "status": "pending_acceptance",
        "first_response_due_at": datetime(2024, 5, 4, 2, 0, tzinfo=UTC),
        "opened_at": OCCURRED_AT,
    }
    return webhook_message("case.opened", OCCURRED_AT, route.merchant_view(payload))


async def deliver(
    receiver: HttpReceiver,
    path: str,
    *,
    clock: ManualClock | None = None,
    timeout_seconds: float = 5.0,
    message: Message | None = None,
):
    channel = WebhookChannel(clock=clock, timeout_seconds=timeout_seconds)
    try:
        return await channel.send(
            message or case_opened(),
            Recipient(receiver.url(path), signing_secret=SECRET),
            KEY,
        )
    finally:
        await channel.aclose()


class TestBody:
    def test_follows_the_standard_envelope_with_only_the_merchants_fields(self):
        body = json.loads(case_opened().text)
        assert body == {
            "type": "case.opened",
            "timestamp": "2024-05-03T02:00:00Z",
            "data": {
                "case_id": "6f9619ff-8b86-4d11-b42d-00c04fc964ff",
                "complaint_number": "202405-000123",
                "priority": "important",
                "status": "pending_acceptance",
                "first_response_due_at": "2024-05-04T02:00:00Z",
                "opened_at": "2024-05-03T02:00:00Z",
            },
        }

    def test_amounts_travel_as_strings(self):
        message = webhook_message("case.resolved", OCCURRED_AT, {"amount": Decimal("199.10")})
        assert json.loads(message.text)["data"]["amount"] == "199.10"


class TestDelivery:
    async def test_the_receiver_gets_a_signature_that_verifies(self, http_receiver):
        result = await deliver(http_receiver, "/hook")

        assert result.status is DeliveryStatus.SENT
        assert result.provider_reference == "req-42"
        [request] = http_receiver.requests
        assert request.headers["webhook-id"] == KEY
        assert request.headers["content-type"] == "application/json"
        assert abs(int(request.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
        assert request.headers["webhook-signature"].startswith("v1,")
        verify(SECRET, request.headers, request.body)
        # The reference implementation agrees, so any receiver's library will.
        payload = Webhook(SECRET).verify(request.body, request.headers)
        assert payload["type"] == "case.opened"

    async def test_every_attempt_keeps_the_id_and_signs_a_fresh_timestamp(self, http_receiver):
        clock = ManualClock(datetime.now(UTC))
        await deliver(http_receiver, "/hook", clock=clock)
        clock.advance(timedelta(minutes=5))
        await deliver(http_receiver, "/hook", clock=clock)
        first, second = http_receiver.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == KEY
        assert (
            int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"])
            == 300
        )
        assert first.headers["webhook-signature"] != second.headers["webhook-signature"]

    async def test_a_receiver_that_comes_back_gets_the_message(self, http_receiver):
        http_receiver.failures_left = 2
        outcomes = [await deliver(http_receiver, "/down-then-up") for _ in range(3)]
        assert [outcome.status for outcome in outcomes] == [
            DeliveryStatus.FAILED,
            DeliveryStatus.FAILED,
            DeliveryStatus.SENT,
        ]
        assert all(outcome.retryable for outcome in outcomes[:2])
        assert outcomes[0].provider_response == "503 down for maintenance"
        last = http_receiver.requests[-1]
        Webhook(SECRET).verify(last.body, last.headers)

    async def test_a_retired_endpoint_is_not_retried(self, http_receiver):
        result = await deliver(http_receiver, "/status/410")
        assert result.status is DeliveryStatus.FAILED
        assert not result.retryable

    @pytest.mark.parametrize("code", [400, 404, 500, 502])
    async def test_any_other_answer_is_retried(self, http_receiver, code):
        result = await deliver(http_receiver, f"/status/{code}")
        assert result.status is DeliveryStatus.FAILED
        assert result.retryable

    async def test_a_redirect_is_not_followed_with_the_signed_body(self, http_receiver):
        result = await deliver(http_receiver, "/redirect")
        assert result.status is DeliveryStatus.FAILED
        assert result.retryable
        assert [request.path for request in http_receiver.requests] == ["/redirect"]

    async def test_a_timeout_after_the_request_was_written_is_uncertain(self, http_receiver):
        result = await deliver(http_receiver, "/slow", timeout_seconds=0.3)
        assert result.status is DeliveryStatus.UNCERTAIN
        # Receivers deduplicate by webhook-id: sending again is safe.
        assert result.retryable
        assert len(http_receiver.on("/slow")) == 1

    async def test_no_endpoint_listening_fails_and_is_retried(self):
        channel = WebhookChannel()
        try:
            result = await channel.send(
                case_opened(),
                Recipient(f"http://127.0.0.1:{free_port()}/hook", signing_secret=SECRET),
                KEY,
            )
        finally:
            await channel.aclose()
        assert result.status is DeliveryStatus.FAILED
        assert result.retryable

    async def test_a_recipient_without_a_secret_is_a_wiring_error(self):
        with pytest.raises(ValueError, match="signing secret"):
            await WebhookChannel().send(case_opened(), Recipient("http://127.0.0.1/"), KEY)


class TestVerification:
    NOW = datetime(2024, 5, 3, 2, 0, 30, tzinfo=UTC)
    BODY = b'{"type":"case.opened","timestamp":"2024-05-03T02:00:00Z","data":{}}'

    def headers(self, *, at: datetime | None = None, secret: str = SECRET) -> dict[str, str]:
        timestamp = int((at or self.NOW).timestamp())
        return signed_headers(secret, KEY, timestamp, self.BODY)

    def test_accepts_a_genuine_fresh_message(self):
        verify(SECRET, self.headers(), self.BODY, now=self.NOW)

    def test_header_names_are_case_insensitive(self):
        upper = {name.upper(): value for name, value in self.headers().items()}
        verify(SECRET, upper, self.BODY, now=self.NOW)

    def test_rejects_a_tampered_body(self):
        tampered = self.BODY.replace(b"case.opened", b"case.closed")
        with pytest.raises(WebhookVerificationError, match="signature"):
            verify(SECRET, self.headers(), tampered, now=self.NOW)
        with pytest.raises(ReferenceError_):
            Webhook(SECRET).verify(tampered, self.headers(at=datetime.now(UTC)))

    def test_rejects_a_tampered_id_or_timestamp(self):
        for name, value in (("webhook-id", "msg_other"), ("webhook-timestamp", "1714701631")):
            headers = {**self.headers(), name: value}
            with pytest.raises(WebhookVerificationError):
                verify(SECRET, headers, self.BODY, now=self.NOW)

    def test_rejects_another_secret(self):
        other = generate_secret()
        with pytest.raises(WebhookVerificationError, match="signature"):
            verify(other, self.headers(), self.BODY, now=self.NOW)

    @pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
    def test_rejects_a_stale_or_future_timestamp_a_replay(self, offset):
        headers = self.headers(at=self.NOW + offset)
        with pytest.raises(WebhookVerificationError, match="tolerance"):
            verify(SECRET, headers, self.BODY, now=self.NOW)

    def test_the_reference_library_rejects_a_stale_message_too(self):
        stale = datetime.now(UTC) - timedelta(minutes=10)
        with pytest.raises(ReferenceError_):
            Webhook(SECRET).verify(self.BODY, self.headers(at=stale))

    def test_accepts_any_of_several_signatures_while_a_secret_rotates(self):
        old = self.headers(secret=generate_secret())
        new = self.headers()
        both = {
            **new,
            "webhook-signature": f"{old['webhook-signature']} {new['webhook-signature']}",
        }
        verify(SECRET, both, self.BODY, now=self.NOW)

    def test_rejects_missing_headers(self):
        for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            headers = {k: v for k, v in self.headers().items() if k != missing}
            with pytest.raises(WebhookVerificationError, match="missing"):
                verify(SECRET, headers, self.BODY, now=self.NOW)

    def test_rejects_a_timestamp_that_is_not_a_number(self):
        headers = {**self.headers(), "webhook-timestamp": "yesterday"}
        with pytest.raises(WebhookVerificationError, match="integer"):
            verify(SECRET, headers, self.BODY, now=self.NOW)


class TestSecrets:
    def test_a_generated_secret_is_whsec_and_32_random_bytes(self):
        secret = generate_secret()
        assert secret.startswith("whsec_")
        assert len(secret_key(secret)) == 32
        assert secret != generate_secret()

    @pytest.mark.parametrize(
        "secret",
        [
            "0123456789abcdef0123456789abcdef",  # no prefix
            "whsec_not base64!",
            "whsec_" + base64.b64encode(b"short").decode(),
        ],
    )
    def test_refuses_a_secret_that_is_not_one(self, secret):
        with pytest.raises(ValueError, match="webhook secret"):
            sign(secret, KEY, 0, b"{}")
