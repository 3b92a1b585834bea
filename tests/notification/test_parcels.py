"""The parcel feed: what a merchant reports of a delayed parcel is what the next progress update
says, on the real database and a real SMTP server; a delivered parcel ends the updates."""

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service import repository, service
from notification_service.channels.registry import build_channels
from notification_service.config import Settings
from notification_service.schemas import ParcelReport, ParcelView
from shared.auth import Principal, Role
from shared.db import transaction
from shared.errors import NotFoundError
from shared.events import ComplaintReceived, EventEnvelope
from tests.notification.test_service import (
    consume,
    fire,
    fire_kind,
    messages_of,
    pending_timer,
    received,
    sessions,
    settings_for,
    triage,
    triaged_as,
)

__all__ = ["sessions"]  # the module's database fixture, shared with test_service

pytestmark = pytest.mark.stack

MERCHANT = Principal(role=Role.MERCHANT, subject="m-svc", merchant_id="m-svc")
OTHER_MERCHANT = Principal(role=Role.MERCHANT, subject="m-other", merchant_id="m-other")


def report(hours_ago: float, status: str, **extra: Any) -> ParcelReport:
    return ParcelReport(
        carrier="SF Express",
        tracking_number="SF1234567890",
        status=status,
        status_at=datetime.now(UTC) - timedelta(hours=hours_ago),
        **extra,
    )


async def delayed_parcel_complaint(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> EventEnvelope[ComplaintReceived]:
    """A logistics complaint whose progress updates have started."""
    complaint = received(settings=settings)
    await consume(sessions, complaint, settings)
    await triage(sessions, triaged_as(complaint, "logistics"), settings)
    return complaint


async def put(
    sessions: async_sessionmaker[AsyncSession],
    complaint: EventEnvelope[ComplaintReceived],
    parcel: ParcelReport,
    principal: Principal = MERCHANT,
) -> ParcelView:
    async with transaction(sessions) as session:
        return await service.report_parcel(
            session, complaint_id=complaint.complaint_id, report=parcel, principal=principal
        )


async def sent_update_text(
    sessions: async_sessionmaker[AsyncSession],
    complaint: EventEnvelope[ComplaintReceived],
    settings: Settings,
    smtp_envelopes: list[Any],
) -> str:
    """Fires the next progress update and returns the plain text the customer received."""
    await fire_kind(sessions, service.PROGRESS_TIMER, str(complaint.complaint_id), settings)
    [update] = [
        m
        for m in await messages_of(sessions, complaint.complaint_id)
        if m.message_type == "notification.progress_update" and m.status == "queued"
    ]
    before = len(smtp_envelopes)
    await fire(sessions, update, settings, build_channels(settings))
    mail = message_from_bytes(smtp_envelopes[before].content, policy=default_policy)
    assert isinstance(mail, EmailMessage)
    body = mail.get_body(("plain",))
    assert body is not None
    text: str = body.get_content()
    return text


class TestParcelFeed:
    async def test_the_next_update_says_what_the_merchant_reported(self, sessions, smtp_server):
        settings = settings_for(smtp_server, progress_interval_seconds=60)
        complaint = await delayed_parcel_complaint(sessions, settings)
        envelopes = smtp_server.recorder.envelopes
        first = await sent_update_text(sessions, complaint, settings, envelopes)
        assert (
            "正在向快递公司核实" in first
        )  # zh-CN, the default locale: "checking with the carrier"
        view = await put(
            sessions,
            complaint,
            report(2, "arrived at Shanghai hub", expected_delivery_at=datetime.now(UTC)),
        )
        assert (view.tracking_number, view.reported_by) == ("SF1234567890", "merchant:m-svc")
        second = await sent_update_text(sessions, complaint, settings, envelopes)
        assert "运单号：SF1234567890" in second
        assert "arrived at Shanghai hub" in second
        assert "预计送达" in second

    async def test_a_late_older_report_changes_nothing(self, sessions, smtp_server):
        settings = settings_for(smtp_server)
        complaint = await delayed_parcel_complaint(sessions, settings)
        await put(sessions, complaint, report(1, "out for delivery"))
        view = await put(sessions, complaint, report(5, "left the warehouse"))
        assert view.status == "out for delivery"

    async def test_a_delivered_parcel_ends_the_updates(self, sessions, smtp_server):
        settings = settings_for(smtp_server, progress_interval_seconds=60)
        complaint = await delayed_parcel_complaint(sessions, settings)
        key = str(complaint.complaint_id)
        assert await pending_timer(sessions, key) is not None
        view = await put(sessions, complaint, report(0, "signed for", delivered=True))
        assert view.delivered
        assert await pending_timer(sessions, key) is None
        async with transaction(sessions) as session:
            progress = await repository.get_progress(session, complaint_id=complaint.complaint_id)
        assert progress is not None
        assert progress.stop_reason == "parcel_delivered"

    async def test_only_the_complaints_merchant_may_report_it(self, sessions):
        settings = settings_for()
        complaint = await delayed_parcel_complaint(sessions, settings)
        with pytest.raises(NotFoundError) as refused:
            await put(sessions, complaint, report(1, "in transit"), OTHER_MERCHANT)
        unknown = received(settings=settings)  # never consumed: notification does not know it
        with pytest.raises(NotFoundError) as missing:
            await put(sessions, unknown, report(1, "in transit"))
        # Out of scope reads exactly like a complaint that is not there.
        assert refused.value.detail.replace(str(complaint.complaint_id), "<id>") == (
            missing.value.detail.replace(str(unknown.complaint_id), "<id>")
        )
        async with transaction(sessions) as session:
            assert await repository.get_parcel(session, complaint_id=complaint.complaint_id) is None
