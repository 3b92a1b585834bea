"""HTTP models of the notification API."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel


class RecipientView(BaseModel):
    """Who is told, masked."""

    customer_id: str
    preferred_channel: str
    phone: str | None
    email: str | None


class NotificationView(BaseModel):
    """One message recorded for the customer."""

    notification_id: UUID
    kind: str
    channel: str | None
    status: str
    body: str
    respond_by: datetime
    recorded_at: datetime


class ComplaintNotificationsView(BaseModel):
    """Notification's view of a complaint."""

    complaint_id: UUID
    complaint_number: str
    recipient: RecipientView | None
    notifications: list[NotificationView]
