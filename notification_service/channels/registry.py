"""The channels one process sends on, built from its settings; missing settings, no channel."""

from dataclasses import dataclass, field
from datetime import timedelta

from notification_service.channels.base import Channel
from notification_service.channels.email import EmailChannel, SmtpSettings
from notification_service.channels.http_provider import (
    HttpProviderChannel,
    HttpProviderSettings,
    app_push_channel,
    sms_channel,
)
from notification_service.channels.webhook import WebhookChannel
from notification_service.config import Settings
from notification_service.domain.retry import (
    PROVIDER_RETRY_POLICY,
    WEBHOOK_RETRY_POLICY,
    RetryPolicy,
)
from notification_service.domain.routing import DeliveryChannel

NOT_CONFIGURED = "channel not configured"


@dataclass
class ChannelSet:
    """The configured channels by name, and whether each may resend an uncertain message."""

    channels: dict[str, Channel] = field(default_factory=dict)
    # Channels whose provider deduplicates by the idempotency key: a send cut short (an answer
    # lost, the process killed) is sent again with the same key.
    resend_safe: frozenset[str] = frozenset()
    webhook_retry: RetryPolicy = WEBHOOK_RETRY_POLICY
    provider_retry: RetryPolicy = PROVIDER_RETRY_POLICY

    def get(self, name: str) -> Channel | None:
        """The channel of that name, or None when it is not configured."""
        return self.channels.get(name)

    def configured(self) -> frozenset[str]:
        """The names of the configured channels."""
        return frozenset(self.channels)

    def retry_policy(self, channel: str) -> RetryPolicy:
        """The retry schedule of a channel."""
        return self.webhook_retry if channel == DeliveryChannel.WEBHOOK else self.provider_retry

    async def aclose(self) -> None:
        """Closes the HTTP clients the channels hold."""
        for channel in self.channels.values():
            if isinstance(channel, HttpProviderChannel | WebhookChannel):
                await channel.aclose()


def configured_channels(settings: Settings) -> frozenset[str]:
    """The channels the settings configure, without building them (planning needs only names)."""
    names = {DeliveryChannel.WEBHOOK.value}
    if settings.smtp_host:
        names.add(DeliveryChannel.EMAIL.value)
    if settings.sms_endpoint:
        names.add(DeliveryChannel.SMS.value)
    if settings.push_endpoint:
        names.add(DeliveryChannel.APP_PUSH.value)
    return frozenset(names)


def _policy(delays: list[float], default: RetryPolicy) -> RetryPolicy:
    if not delays:
        return default
    return RetryPolicy(delays=tuple(timedelta(seconds=delay) for delay in delays))


def build_channels(settings: Settings) -> ChannelSet:
    """The channels the settings configure (webhooks always; the others when set)."""
    channels: dict[str, Channel] = {
        DeliveryChannel.WEBHOOK: WebhookChannel(
            timeout_seconds=settings.webhook_timeout_seconds,
            connect_timeout_seconds=settings.webhook_connect_timeout_seconds,
        )
    }
    resend_safe = {DeliveryChannel.WEBHOOK.value}
    if settings.smtp_host:
        channels[DeliveryChannel.EMAIL] = EmailChannel(
            SmtpSettings(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender_address=settings.smtp_from,
                sender_name=settings.smtp_from_name,
                username=settings.smtp_username,
                password=settings.smtp_password,
                use_tls=settings.smtp_use_tls,
                require_starttls=settings.smtp_require_starttls,
                timeout_seconds=settings.smtp_timeout_seconds,
            )
        )
    if settings.sms_endpoint:
        channels[DeliveryChannel.SMS] = sms_channel(
            HttpProviderSettings(
                endpoint=settings.sms_endpoint,
                api_key=settings.sms_api_key or "",
                sender=settings.sms_sender,
                timeout_seconds=settings.provider_timeout_seconds,
                honours_idempotency_key=settings.sms_honours_idempotency_key,
            )
        )
        if settings.sms_honours_idempotency_key:
            resend_safe.add(DeliveryChannel.SMS.value)
    if settings.push_endpoint:
        channels[DeliveryChannel.APP_PUSH] = app_push_channel(
            HttpProviderSettings(
                endpoint=settings.push_endpoint,
                api_key=settings.push_api_key or "",
                sender=settings.push_sender,
                timeout_seconds=settings.provider_timeout_seconds,
                honours_idempotency_key=settings.push_honours_idempotency_key,
            )
        )
        if settings.push_honours_idempotency_key:
            resend_safe.add(DeliveryChannel.APP_PUSH.value)
    return ChannelSet(
        channels=channels,
        resend_safe=frozenset(resend_safe),
        webhook_retry=_policy(settings.webhook_retry_delays_seconds, WEBHOOK_RETRY_POLICY),
        provider_retry=_policy(settings.provider_retry_delays_seconds, PROVIDER_RETRY_POLICY),
    )
