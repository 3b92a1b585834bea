"""Channels: each a real protocol (SMTP, an HTTP provider, Standard Webhooks) behind `Channel`."""

from notification_service.channels.base import (
    Channel,
    DeliveryResult,
    DeliveryStatus,
    Recipient,
)

__all__ = ["Channel", "DeliveryResult", "DeliveryStatus", "Recipient"]
