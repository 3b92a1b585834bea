"""Email over SMTP (aiosmtplib): plain text and HTML alternatives, one connection per send.

The conversation is driven step by step so a failure can be placed: anything that goes wrong
before DATA (connect, TLS, login, MAIL, RCPT) means nothing was handed over, and a refusal
with a 4xx code is worth another try later. A timeout or a dropped connection during DATA
leaves the outcome unknown: the server may have queued the message before the line went
quiet. SMTP has no idempotency key, so such a send is `uncertain` and not retried (a retry
could deliver twice). The Message-ID derives from the idempotency key, so a receiving system
that deduplicates by Message-ID sees one message either way.
"""

from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr

from aiosmtplib import SMTP, SMTPException, SMTPResponseException

from notification_service.channels.base import (
    DeliveryResult,
    Recipient,
    check_idempotency_key,
    provider_answer,
)
from notification_service.domain.routing import DeliveryChannel
from notification_service.domain.templates import Message
from shared.clock import Clock, SystemClock

# CRLF line ends, and 7-bit transfer encodings: not every relay takes 8BITMIME.
_POLICY = SMTP_POLICY.clone(cte_type="7bit")
# Replies 4xx are temporary (mailbox busy, greylisting): another try may pass.
_TRANSIENT_CODES = range(400, 500)


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to hand email over."""

    host: str
    port: int
    sender_address: str
    sender_name: str | None = None
    username: str | None = None
    password: str | None = None
    # Implicit TLS (port 465); otherwise STARTTLS when the server offers it, or when required.
    use_tls: bool = False
    require_starttls: bool = False
    timeout_seconds: float = 30.0

    def __repr__(self) -> str:
        return f"SmtpSettings(host={self.host!r}, port={self.port}, password=<hidden>)"


class EmailChannel:
    """Sends email through one SMTP relay."""

    name = DeliveryChannel.EMAIL.value

    def __init__(self, settings: SmtpSettings, *, clock: Clock | None = None) -> None:
        self._settings = settings
        self._clock = clock or SystemClock()
        self._message_id_domain = settings.sender_address.rpartition("@")[2] or "localhost"

    def build(self, message: Message, recipient: Recipient, idempotency_key: str) -> EmailMessage:
        """The MIME message for one recipient: text, and HTML as its alternative."""
        key = check_idempotency_key(idempotency_key)
        email = EmailMessage(policy=_POLICY)
        settings = self._settings
        email["From"] = (
            formataddr((settings.sender_name, settings.sender_address))
            if settings.sender_name
            else settings.sender_address
        )
        email["To"] = Address(display_name=recipient.name or "", addr_spec=recipient.address)
        email["Subject"] = message.subject or ""
        email["Date"] = format_datetime(self._clock.now())
        email["Message-ID"] = f"<{key}@{self._message_id_domain}>"
        # Receivers and our own log can tie a copy back to the message it is.
        email["X-Idempotency-Key"] = key
        # Automated mail: no out-of-office replies back to a no-reply sender.
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(message.text)
        if message.html is not None:
            email.add_alternative(message.html, subtype="html")
        return email

    async def send(
        self, message: Message, recipient: Recipient, idempotency_key: str
    ) -> DeliveryResult:
        """Hands the message to the SMTP relay and classifies what happened."""
        email = self.build(message, recipient, idempotency_key)
        settings = self._settings
        client = SMTP(
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            use_tls=settings.use_tls,
            start_tls=True if settings.require_starttls else None,
            timeout=settings.timeout_seconds,
        )
        emails = [recipient.address]
        try:
            try:
                await client.connect()
                await client.mail(settings.sender_address)
                await client.rcpt(recipient.address)
            except SMTPResponseException as exc:
                return _refused(exc, emails)
            except (SMTPException, OSError) as exc:
                # Connect errors, TLS failures, timeouts before DATA: nothing was handed over.
                return DeliveryResult.failed(
                    provider_answer(f"{type(exc).__name__}: {exc}", emails=emails),
                    retryable=True,
                )
            try:
                response = await client.data(email.as_bytes())
            except SMTPResponseException as exc:
                return _refused(exc, emails)
            except (SMTPException, OSError) as exc:
                return DeliveryResult.uncertain(
                    provider_answer(
                        f"{type(exc).__name__} during DATA, the relay may have queued it: {exc}",
                        emails=emails,
                    ),
                    retryable=False,
                )
        finally:
            await _quit(client)
        return DeliveryResult.sent(
            str(email["Message-ID"]),
            provider_answer(f"{response.code} {response.message}", emails=emails),
        )


def _refused(exc: SMTPResponseException, emails: list[str]) -> DeliveryResult:
    return DeliveryResult.failed(
        provider_answer(f"{exc.code} {exc.message}", emails=emails),
        retryable=exc.code in _TRANSIENT_CODES,
    )


async def _quit(client: SMTP) -> None:
    # The message is already accepted or lost: a failing QUIT changes neither.
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (SMTPException, OSError):
        client.close()
