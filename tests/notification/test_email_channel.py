"""Email over SMTP against a real local SMTP server (aiosmtpd): what it received, and how each
way a send can end is classified.
"""

from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest

from notification_service.channels import DeliveryStatus, Recipient
from notification_service.channels.email import EmailChannel, SmtpSettings
from notification_service.domain.contexts import sample_context
from notification_service.domain.templates import Message, render
from shared.clock import ManualClock
from tests.notification.conftest import SmtpServerUnderTest, free_port

KEY = "msg_5b0c6a4f2d8e4e0f9c1a7b3d2e6f8a90"
RECIPIENT = Recipient(address="zhang.wei@example.com", name="张伟")
SENT_AT = datetime(2024, 5, 3, 2, 0, 5, tzinfo=UTC)


def channel_for(server: SmtpServerUnderTest, *, timeout: float = 5.0) -> EmailChannel:
    return EmailChannel(
        SmtpSettings(
            host=server.host,
            port=server.port,
            sender_address="no-reply@shop.example.com",
            sender_name="商城客服",
            timeout_seconds=timeout,
        ),
        clock=ManualClock(SENT_AT),
    )


def receipt() -> Message:
    return render("complaint.received", "email", "zh-CN", sample_context("complaint.received"))


def lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").strip("\n").split("\n")


def received_message(server: SmtpServerUnderTest) -> EmailMessage:
    [envelope] = server.recorder.envelopes
    assert isinstance(envelope.content, bytes)
    parsed = message_from_bytes(envelope.content, policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


class TestDelivery:
    async def test_the_server_receives_headers_text_and_html(self, smtp_server):
        message = receipt()
        result = await channel_for(smtp_server).send(message, RECIPIENT, KEY)

        assert result.status is DeliveryStatus.SENT
        assert result.provider_reference == f"<{KEY}@shop.example.com>"
        assert result.provider_response == "250 2.0.0 Ok: queued as 4F2A1B"
        [envelope] = smtp_server.recorder.envelopes
        assert envelope.mail_from == "no-reply@shop.example.com"
        assert envelope.rcpt_tos == ["zhang.wei@example.com"]
        received = received_message(smtp_server)
        assert received["Subject"] == "您的投诉已受理（编号 202405-000123）"
        assert received["From"] == "商城客服 <no-reply@shop.example.com>"
        assert received["To"] == "张伟 <zhang.wei@example.com>"
        assert received["Message-ID"] == f"<{KEY}@shop.example.com>"
        assert received["X-Idempotency-Key"] == KEY
        assert received["Auto-Submitted"] == "auto-generated"
        assert received["Date"].datetime == SENT_AT
        assert received.get_content_type() == "multipart/alternative"
        text = received.get_body(("plain",))
        html = received.get_body(("html",))
        assert text is not None
        assert html is not None
        # Lines end in CRLF on the wire, as SMTP wants.
        assert lines(text.get_content()) == lines(message.text)
        assert lines(html.get_content()) == lines(message.html or "")
        assert "投诉编号：202405-000123" in text.get_content()

    async def test_headers_survive_as_seven_bit_on_the_wire(self, smtp_server):
        await channel_for(smtp_server).send(receipt(), RECIPIENT, KEY)
        [envelope] = smtp_server.recorder.envelopes
        assert isinstance(envelope.content, bytes)
        envelope.content.decode("ascii")  # encoded words and base64/qp: no raw UTF-8 on the wire

    async def test_a_text_only_message_is_a_single_part(self, smtp_server):
        message = Message(subject="Hello", text="Plain words only.")
        result = await channel_for(smtp_server).send(message, Recipient("a@example.com"), KEY)
        assert result.status is DeliveryStatus.SENT
        received = received_message(smtp_server)
        assert received.get_content_type() == "text/plain"
        assert received.get_content().strip() == "Plain words only."

    async def test_the_servers_answer_is_logged_without_the_address(self, smtp_server):
        smtp_server.recorder.data_reply = "250 Ok: queued for zhang.wei@example.com"
        result = await channel_for(smtp_server).send(receipt(), RECIPIENT, KEY)
        assert "zhang.wei@example.com" not in result.provider_response
        assert "z***@example.com" in result.provider_response


class TestFailures:
    async def test_a_permanently_refused_recipient_fails_for_good(self, smtp_server):
        smtp_server.recorder.refuse_recipient_with = "550 5.1.1 No such mailbox"
        result = await channel_for(smtp_server).send(receipt(), RECIPIENT, KEY)
        assert result.status is DeliveryStatus.FAILED
        assert not result.retryable
        assert result.provider_response.startswith("550")
        assert smtp_server.recorder.envelopes == []

    async def test_a_temporarily_refused_recipient_is_retried(self, smtp_server):
        smtp_server.recorder.refuse_recipient_with = "451 4.7.1 Greylisted, try again later"
        result = await channel_for(smtp_server).send(receipt(), RECIPIENT, KEY)
        assert result.status is DeliveryStatus.FAILED
        assert result.retryable

    async def test_a_refused_message_fails_by_the_code_of_the_refusal(self, smtp_server):
        smtp_server.recorder.data_reply = "554 5.7.1 Message rejected as spam"
        result = await channel_for(smtp_server).send(receipt(), RECIPIENT, KEY)
        assert result.status is DeliveryStatus.FAILED
        assert not result.retryable

    async def test_no_server_listening_fails_and_is_retried(self):
        closed = SmtpServerUnderTest("127.0.0.1", free_port(), recorder=None)  # type: ignore[arg-type]
        result = await channel_for(closed).send(receipt(), RECIPIENT, KEY)
        assert result.status is DeliveryStatus.FAILED
        assert result.retryable

    async def test_a_timeout_after_the_message_was_written_is_uncertain(self, smtp_server):
        # The server has the whole message and stalls before answering: it may queue it.
        smtp_server.recorder.stall_data_seconds = 2.0
        result = await channel_for(smtp_server, timeout=0.5).send(receipt(), RECIPIENT, KEY)
        assert result.status is DeliveryStatus.UNCERTAIN
        # SMTP has no idempotency key: another try could deliver it twice.
        assert not result.retryable
        assert len(smtp_server.recorder.envelopes) == 1

    def test_an_idempotency_key_that_cannot_be_a_header_is_refused(self, smtp_server):
        with pytest.raises(ValueError, match="idempotency key"):
            channel_for(smtp_server).build(receipt(), RECIPIENT, "bad key\r\nBcc: x@evil")
