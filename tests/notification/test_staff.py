"""The staff directory: an assigned agent hears of their case and its SLA alerts at their own
address, on the real database and a real SMTP server; without an entry, the team's address."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service import service
from notification_service.channels.registry import build_channels
from notification_service.config import Settings
from notification_service.schemas import StaffContactPut
from shared.auth import Principal, Role
from shared.db import transaction
from shared.errors import NotFoundError
from shared.events import CaseAssigned, ComplaintSlaWarning, EventEnvelope, new_event
from tests.notification.conftest import SmtpServerUnderTest
from tests.notification.test_service import (
    case_change,
    case_opened,
    consume,
    fire,
    messages_of,
    received,
    sessions,
    settings_for,
)

__all__ = ["sessions"]  # the module's database fixture, shared with test_service

pytestmark = pytest.mark.stack

ADMIN = Principal(role=Role.ADMIN, subject="ops-1")


def agent_id() -> str:
    """An agent of this test alone: the directory is shared by the module's tests."""
    return f"agent:a{uuid.uuid4().hex[:10]}"


def team_settings(smtp: SmtpServerUnderTest) -> Settings:
    return settings_for(smtp).model_copy(
        update={
            "staff_emails": {
                "assigned_agent:logistics": "logistics.desk@ops.example",
                "supervisor:*": "duty.supervisor@ops.example",
            }
        }
    )


async def register(
    sessions: async_sessionmaker[AsyncSession], staff_id: str, email: str, settings: Settings
) -> None:
    async with transaction(sessions) as session:
        await service.put_staff_contact(
            session,
            staff_id=staff_id,
            request=StaffContactPut(email=email),
            settings=settings,
            principal=ADMIN,
        )


async def assigned_case(
    sessions: async_sessionmaker[AsyncSession], agent: str, settings: Settings
) -> tuple[EventEnvelope[Any], EventEnvelope[Any]]:
    """A complaint whose case was opened and assigned to `agent`, as the consumer applies them."""
    complaint = received(settings=settings)
    opened = case_opened(complaint)
    await consume(sessions, complaint, settings)
    await consume(sessions, opened, settings)
    assigned = case_change(
        CaseAssigned,
        complaint,
        opened,
        state="open",
        customer_visible_state="processing",
        trigger="assign",
        assignee_id=agent,
        team="logistics",
    )
    await consume(sessions, assigned, settings)
    return complaint, assigned


async def staff_messages(
    sessions: async_sessionmaker[AsyncSession], complaint_id: uuid.UUID, message_type: str
) -> dict[str, Any]:
    return {
        m.audience: m
        for m in await messages_of(sessions, complaint_id)
        if m.message_type == message_type
    }


class TestAssignedAgentsOwnAddress:
    async def test_an_assignment_reaches_the_agents_own_address(self, sessions, smtp_server):
        settings = team_settings(smtp_server)
        agent = agent_id()
        await register(sessions, agent, "li.na@ops.example", settings)
        complaint, _ = await assigned_case(sessions, agent, settings)
        message = (await staff_messages(sessions, complaint.complaint_id, "case.assigned"))[
            "assigned_agent"
        ]
        assert (message.recipient_id, message.status) == (f"staff:{agent}", "queued")
        before = len(smtp_server.recorder.envelopes)
        await fire(sessions, message, settings, build_channels(settings))
        envelope = smtp_server.recorder.envelopes[before]
        assert envelope.rcpt_tos == ["li.na@ops.example"]
        assert complaint.payload.complaint_number.encode() in envelope.content

    async def test_without_an_entry_the_teams_address_is_used(self, sessions, smtp_server):
        settings = team_settings(smtp_server)
        complaint, _ = await assigned_case(sessions, agent_id(), settings)
        message = (await staff_messages(sessions, complaint.complaint_id, "case.assigned"))[
            "assigned_agent"
        ]
        assert message.recipient_id == "assigned_agent:logistics"
        before = len(smtp_server.recorder.envelopes)
        await fire(sessions, message, settings, build_channels(settings))
        assert smtp_server.recorder.envelopes[before].rcpt_tos == ["logistics.desk@ops.example"]

    async def test_an_sla_warning_reaches_the_cases_assignee_and_the_supervisor(
        self, sessions, smtp_server
    ):
        settings = team_settings(smtp_server)
        agent = agent_id()
        await register(sessions, agent, "wang.lei@ops.example", settings)
        complaint, _ = await assigned_case(sessions, agent, settings)
        now = datetime.now(UTC)
        warning = new_event(
            ComplaintSlaWarning(
                complaint_number=complaint.payload.complaint_number,
                merchant_id="m-svc",
                team="logistics",
                priority="important",
                clock="first_response",
                warn_at=now,
                due_at=now + timedelta(hours=1),
                warned_at=now,
            ),
            producer="triage_service",
            complaint_id=complaint.complaint_id,
            correlation_id=complaint.correlation_id,
        )
        await consume(sessions, warning, settings)
        log = await staff_messages(sessions, complaint.complaint_id, "complaint.sla_warning")
        channels = build_channels(settings)
        before = len(smtp_server.recorder.envelopes)
        await fire(sessions, log["assigned_agent"], settings, channels)
        await fire(sessions, log["supervisor"], settings, channels)
        recipients = [e.rcpt_tos for e in smtp_server.recorder.envelopes[before:]]
        assert recipients == [["wang.lei@ops.example"], ["duty.supervisor@ops.example"]]

    async def test_an_address_removed_before_the_send_fails_the_message_plainly(
        self, sessions, smtp_server
    ):
        settings = team_settings(smtp_server)
        agent = agent_id()
        await register(sessions, agent, "zhao.min@ops.example", settings)
        complaint, _ = await assigned_case(sessions, agent, settings)
        async with transaction(sessions) as session:
            await service.delete_staff_contact(session, staff_id=agent, principal=ADMIN)
        message = (await staff_messages(sessions, complaint.complaint_id, "case.assigned"))[
            "assigned_agent"
        ]
        before = len(smtp_server.recorder.envelopes)
        await fire(sessions, message, settings, build_channels(settings))
        assert len(smtp_server.recorder.envelopes) == before
        after = (await staff_messages(sessions, complaint.complaint_id, "case.assigned"))[
            "assigned_agent"
        ]
        assert after.status == "failed"
        assert "staff directory" in after.reason


class TestDirectory:
    async def test_the_address_is_sealed_at_rest_and_masked_when_read(self, sessions):
        settings = settings_for()
        agent = agent_id()
        await register(sessions, agent, "li.na@ops.example", settings)
        async with transaction(sessions) as session:
            view = await service.get_staff_contact(
                session, staff_id=agent, settings=settings, principal=ADMIN
            )
            stored = await service.repository.get_staff_contact(session, staff_id=agent)
        assert (view.email, view.updated_by) == ("l***@ops.example", "admin:ops-1")
        assert stored is not None
        assert "li.na" not in stored.sealed_email

    async def test_an_agent_keeps_their_own_entry_and_sees_no_one_elses(self, sessions):
        settings = settings_for()
        own = agent_id()
        other = agent_id()
        await register(sessions, other, "other@ops.example", settings)
        me = Principal(role=Role.AGENT, subject=own.removeprefix("agent:"))
        async with transaction(sessions) as session:
            view = await service.put_staff_contact(
                session,
                staff_id=own,
                request=StaffContactPut(email="me@ops.example"),
                settings=settings,
                principal=me,
            )
        assert view.updated_by == own
        with pytest.raises(NotFoundError):
            async with transaction(sessions) as session:
                await service.get_staff_contact(
                    session, staff_id=other, settings=settings, principal=me
                )
        with pytest.raises(NotFoundError):
            async with transaction(sessions) as session:
                await service.delete_staff_contact(session, staff_id=other, principal=me)
        async with transaction(sessions) as session:
            # The other agent's entry is still there.
            await service.get_staff_contact(
                session, staff_id=other, settings=settings, principal=ADMIN
            )

    async def test_removing_an_entry_that_is_not_there_is_not_found(self, sessions):
        with pytest.raises(NotFoundError):
            async with transaction(sessions) as session:
                await service.delete_staff_contact(session, staff_id=agent_id(), principal=ADMIN)
