"""SMS and app push through the HTTP provider adapter, against a real local HTTP server."""

import httpx
import pytest

from notification_service.channels import DeliveryStatus, Recipient
from notification_service.channels.http_provider import (
    HttpProviderChannel,
    HttpProviderSettings,
    app_push_channel,
    sms_channel,
)
from notification_service.domain.contexts import sample_context
from notification_service.domain.routing import DeliveryChannel
from notification_service.domain.templates import Message, render
from tests.notification.conftest import HttpReceiver, free_port

KEY = "msg_0f3a9c1e5b7d4a2c8e6f1a3b5c7d9e0f"
PHONE = Recipient(address="+8613800138000")


def settings(url: str, **changes: object) -> HttpProviderSettings:
    values: dict[str, object] = {
        "endpoint": url,
        "api_key": "test-api-key-123",
        "sender": "商城客服",
        "timeout_seconds": 5.0,
    }
    values.update(changes)
    return HttpProviderSettings(**values)  # type: ignore[arg-type]


def receipt_sms() -> Message:
    return render("complaint.received", "sms", "zh-CN", sample_context("complaint.received"))


async def send(channel: HttpProviderChannel, message: Message, key: str = KEY):
    try:
        return await channel.send(message, PHONE, key)
    finally:
        await channel.aclose()


class TestDelivery:
    async def test_posts_the_message_with_credentials_and_idempotency_key(
        self, http_receiver: HttpReceiver
    ):
        message = receipt_sms()
        result = await send(sms_channel(settings(http_receiver.url("/provider"))), message)

        assert result.status is DeliveryStatus.SENT
        assert result.provider_reference == "prov-1"
        [request] = http_receiver.requests
        assert request.headers["authorization"] == "Bearer test-api-key-123"
        assert request.headers["idempotency-key"] == KEY
        assert request.headers["content-type"] == "application/json"
        assert request.json() == {
            "channel": "sms",
            "to": "+8613800138000",
            "title": None,
            "text": message.text,
            "sender": "商城客服",
        }

    async def test_an_app_push_carries_its_title(self, http_receiver: HttpReceiver):
        message = render(
            "complaint.received", "app_push", "en", sample_context("complaint.received")
        )
        channel = app_push_channel(settings(http_receiver.url("/provider")))
        try:
            result = await channel.send(message, Recipient("device-token-abc"), KEY)
        finally:
            await channel.aclose()
        assert result.status is DeliveryStatus.SENT
        body = http_receiver.requests[0].json()
        assert body["channel"] == "app_push"
        assert body["to"] == "device-token-abc"
        assert body["title"] == "Complaint received"

    async def test_the_providers_echo_of_the_number_is_not_logged(
        self, http_receiver: HttpReceiver
    ):
        result = await send(sms_channel(settings(http_receiver.url("/provider"))), receipt_sms())
        assert "13800138000" not in result.provider_response
        assert "138****8000" in result.provider_response

    async def test_a_shared_client_is_left_open_for_its_owner(self, http_receiver: HttpReceiver):
        async with httpx.AsyncClient() as client:
            channel = sms_channel(settings(http_receiver.url("/provider")), client=client)
            await channel.send(receipt_sms(), PHONE, KEY)
            await channel.aclose()
            assert not client.is_closed

    def test_serves_only_sms_and_push(self):
        with pytest.raises(ValueError, match="sms or app_push"):
            HttpProviderChannel(DeliveryChannel.EMAIL, settings("http://127.0.0.1:1/"))


class TestUnknownOutcomes:
    async def test_a_timeout_after_the_request_was_written_is_uncertain(
        self, http_receiver: HttpReceiver
    ):
        channel = sms_channel(settings(http_receiver.url("/slow-provider"), timeout_seconds=0.3))
        result = await send(channel, receipt_sms())
        assert result.status is DeliveryStatus.UNCERTAIN
        # The provider deduplicates by key: sending again is safe.
        assert result.retryable
        assert len(http_receiver.on("/slow-provider")) == 1

    async def test_a_retry_with_the_same_key_gets_the_first_sends_reference(
        self, http_receiver: HttpReceiver
    ):
        http_receiver.slow_seconds = 0.6
        slow = sms_channel(settings(http_receiver.url("/slow-provider"), timeout_seconds=0.2))
        assert (await send(slow, receipt_sms())).status is DeliveryStatus.UNCERTAIN
        patient = sms_channel(settings(http_receiver.url("/slow-provider"), timeout_seconds=5))
        result = await send(patient, receipt_sms())
        assert result.status is DeliveryStatus.SENT
        assert result.provider_reference == "prov-1"
        assert http_receiver.sent_by_key == {KEY: "prov-1"}

    async def test_an_uncertain_send_is_not_retried_when_the_provider_ignores_keys(
        self, http_receiver: HttpReceiver
    ):
        channel = sms_channel(
            settings(http_receiver.url("/slow"), timeout_seconds=0.3, honours_idempotency_key=False)
        )
        result = await send(channel, receipt_sms())
        assert result.status is DeliveryStatus.UNCERTAIN
        assert not result.retryable

    @pytest.mark.parametrize("code", [500, 502, 504, 409])
    async def test_answers_that_leave_the_outcome_open_are_uncertain(
        self, http_receiver: HttpReceiver, code: int
    ):
        result = await send(
            sms_channel(settings(http_receiver.url(f"/status/{code}"))), receipt_sms()
        )
        assert result.status is DeliveryStatus.UNCERTAIN
        assert result.retryable
        assert result.provider_response == f"{code} answer {code}"


class TestFailures:
    @pytest.mark.parametrize(("code", "retryable"), [(429, True), (503, True), (408, True)])
    async def test_temporary_refusals_are_retried(
        self, http_receiver: HttpReceiver, code: int, retryable: bool
    ):
        result = await send(
            sms_channel(settings(http_receiver.url(f"/status/{code}"))), receipt_sms()
        )
        assert result.status is DeliveryStatus.FAILED
        assert result.retryable is retryable

    @pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
    async def test_other_refusals_are_final(self, http_receiver: HttpReceiver, code: int):
        result = await send(
            sms_channel(settings(http_receiver.url(f"/status/{code}"))), receipt_sms()
        )
        assert result.status is DeliveryStatus.FAILED
        assert not result.retryable

    async def test_a_redirect_is_not_followed(self, http_receiver: HttpReceiver):
        result = await send(sms_channel(settings(http_receiver.url("/redirect"))), receipt_sms())
        assert result.status is DeliveryStatus.FAILED
        assert [request.path for request in http_receiver.requests] == ["/redirect"]

    async def test_no_server_listening_fails_and_is_retried(self):
        closed = f"http://127.0.0.1:{free_port()}/provider"
        result = await send(sms_channel(settings(closed)), receipt_sms())
        assert result.status is DeliveryStatus.FAILED
        assert result.retryable

    async def test_a_malformed_endpoint_fails_for_good(self):
        result = await send(sms_channel(settings("ftp://127.0.0.1/provider")), receipt_sms())
        assert result.status is DeliveryStatus.FAILED
        assert not result.retryable

    def test_settings_never_print_the_api_key(self):
        assert "test-api-key-123" not in repr(settings("http://127.0.0.1/"))
