"""Notification's service on the real database, sending through real local servers.

Events are handed to the service functions as the consumer would (one transaction each) and
timers are fired as the worker would, so what is checked is what only the database and the
channels can show: one message per event and recipient however often an event comes, the
delivery log and its attempts, the outbox events, and what a send cut short becomes.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook as StandardWebhook

from notification_service import repository, service
from notification_service.channels.registry import ChannelSet, build_channels
from notification_service.config import Settings
from notification_service.domain.preferences import CustomerPreferences
from notification_service.domain.surveys import SurveyAnswer, SurveyScope
from notification_service.models import metadata, outbox, timers
from notification_service.schemas import PreviewRequest, SurveyRequest, WebhookEndpointCreate
from services.catalog import BY_NAME
from shared.auth import Principal, Role
from shared.clock import ManualClock, using_clock
from shared.db import create_engine, create_sessionmaker, transaction
from shared.errors import ConflictError, GoneError, NotFoundError, UnprocessableError
from shared.events import (
    CaseAssigned,
    CaseOpened,
    CaseRejected,
    CaseRemedyOffered,
    CaseResolved,
    ComplaintReceived,
    ComplaintSlaBreached,
    ComplaintTriaged,
    CustomerErased,
    EventEnvelope,
    new_event,
)
from shared.events.payloads import RemedyLine
from shared.pii import seal
from shared.timers import PENDING, Timer
from tests.notification.conftest import SmtpServerUnderTest
from tests.support.stack import StackUnderTest

pytestmark = pytest.mark.stack

PHONE = "13912345678"
EMAIL = "wang.fang@example.test"
NAME = "王芳"


@pytest.fixture(scope="module")
async def sessions(stack: StackUnderTest) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions as the notification service's own database role."""
    engine = create_engine(stack.config.service_database_url(BY_NAME["notification"]), pool_size=8)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def settings_for(
    smtp: SmtpServerUnderTest | None = None, sms_endpoint: str | None = None, **extra: Any
) -> Settings:
    """Settings with the given local servers as channels, and quick retries."""
    return Settings(
        smtp_host=smtp.host if smtp else None,
        smtp_port=smtp.port if smtp else 25,
        smtp_from="care@shop.example",
        sms_endpoint=sms_endpoint,
        sms_api_key="test-key",
        provider_retry_delays_seconds=[1, 2],
        staff_emails={"supervisor:*": "duty.supervisor@ops.example"},
        **extra,
    )


def received(
    *, preferred: str = "email", contact: dict[str, Any] | None = None, settings: Settings
) -> EventEnvelope[ComplaintReceived]:
    """A new complaint.received of its own complaint, with a sealed contact."""
    now = datetime.now(UTC)
    details = contact or {"name": NAME, "phone": PHONE, "email": EMAIL}
    return new_event(
        ComplaintReceived(
            complaint_number=f"202411-{uuid.uuid4().int % 1_000_000:06d}",
            customer_id=f"cust-{uuid.uuid4().hex[:8]}",
            sealed_contact=seal({**details, "preferred_channel": preferred}, settings.pii_keyring),
            preferred_contact_channel=preferred,
            order_number="O2024112300001",
            merchant_id="m-svc",
            channel="app",
            target="product",
            description="broken kettle",
            received_at=now,
            storefront_id="sf-test",
        ),
        producer="intake_service",
        complaint_id=uuid.uuid4(),
        correlation_id=f"svc-{uuid.uuid4().hex[:8]}",
    )


def case_opened(complaint: EventEnvelope[ComplaintReceived]) -> EventEnvelope[CaseOpened]:
    """The case opened for a complaint."""
    now = datetime.now(UTC)
    return new_event(
        CaseOpened(
            case_id=uuid.uuid4(),
            complaint_number=complaint.payload.complaint_number,
            merchant_id="m-svc",
            priority="general",
            status="processing",
            first_response_due_at=now + timedelta(hours=24),
            opened_at=now,
        ),
        producer="resolution_service",
        complaint_id=complaint.complaint_id,
        correlation_id=complaint.correlation_id,
    )


async def consume(
    sessions: async_sessionmaker[AsyncSession], event: EventEnvelope[Any], settings: Settings
) -> None:
    """Applies an event as notification's handlers do."""
    async with transaction(sessions) as session:
        if isinstance(event.payload, ComplaintReceived):
            await service.register_recipient(session, event, settings=settings)
        if isinstance(event.payload, CaseOpened):
            await service.acknowledge_case(session, event)
            await service.record_case(session, event)
        if isinstance(event.payload, CaseAssigned):
            await service.record_assignment(session, event)
        if isinstance(event.payload, CustomerErased):
            await service.erase_customer(session, event)
            return
        await service.route_event(session, event, settings=settings)


async def messages_of(
    sessions: async_sessionmaker[AsyncSession], complaint_id: uuid.UUID
) -> list[Any]:
    async with transaction(sessions) as session:
        return await repository.list_messages(session, complaint_id=complaint_id)


async def pending_timer(sessions: async_sessionmaker[AsyncSession], key: str) -> Timer | None:
    async with transaction(sessions) as session:
        row = (
            await session.execute(
                select(timers).where(timers.c.key == key, timers.c.status == PENDING)
            )
        ).first()
    return Timer.from_row(row) if row else None


async def fire(
    sessions: async_sessionmaker[AsyncSession],
    message: Any,
    settings: Settings,
    channels: ChannelSet,
) -> None:
    """Fires the message's pending timer as the worker does (marked fired with the effects)."""
    timer = await pending_timer(sessions, message.delivery_key)
    assert timer is not None, "no pending timer for the message"
    async with transaction(sessions) as session:
        await service.deliver(session, timer, settings=settings, channels=channels)
        await session.execute(
            timers.update()
            .where(timers.c.id == timer.id, timers.c.status == PENDING)
            .values(status="fired", fired_at=datetime.now(UTC))
        )


async def outbox_events(
    sessions: async_sessionmaker[AsyncSession], complaint_id: uuid.UUID
) -> list[str]:
    async with transaction(sessions) as session:
        rows = await session.execute(
            select(outbox.table.c.event_type)
            .where(outbox.table.c.message_key == str(complaint_id))
            .order_by(outbox.table.c.id)
        )
        return [row.event_type for row in rows]


class TestSchema:
    async def test_the_migrations_build_exactly_the_tables_the_models_describe(self, stack):
        def differences(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_schemas": True,
                    "include_name": lambda name, type_, parent: (
                        name == "notification" if type_ == "schema" else name != "alembic_version"
                    ),
                },
            )
            return list(compare_metadata(context, metadata))

        engine = create_engine(stack.admin_sqlalchemy_url(), pool_size=1)
        try:
            async with engine.connect() as connection:
                assert await connection.run_sync(differences) == []
        finally:
            await engine.dispose()


class TestReceipt:
    async def test_the_receipt_reaches_the_smtp_server_and_the_log_keeps_it_redacted(
        self, sessions, smtp_server
    ):
        settings = settings_for(smtp_server)
        channels = build_channels(settings)
        event = received(settings=settings)
        await consume(sessions, event, settings)
        [message] = await messages_of(sessions, event.complaint_id)
        assert (message.message_type, message.audience, message.channel, message.status) == (
            "complaint.received",
            "customer",
            "email",
            "queued",
        )

        await fire(sessions, message, settings, channels)

        [envelope] = smtp_server.recorder.envelopes
        assert envelope.rcpt_tos == [EMAIL]
        mail = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(mail, EmailMessage)
        assert mail["Message-ID"] == f"<{message.delivery_key}@shop.example>"
        assert mail["X-Idempotency-Key"] == message.delivery_key
        assert event.payload.complaint_number in mail["Subject"]
        body = mail.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert event.payload.complaint_number in text
        assert NAME in text, "the customer is greeted by name"
        [sent] = await messages_of(sessions, event.complaint_id)
        assert sent.status == "sent"
        assert sent.attempts == 1
        assert sent.template == "complaint.received/email.zh-CN.j2"
        assert NAME not in sent.body, "the log keeps the body redacted"
        assert event.payload.complaint_number in sent.body
        assert "notification.sent" in await outbox_events(sessions, event.complaint_id)

    async def test_the_same_event_twice_stores_and_sends_one_message(self, sessions, smtp_server):
        settings = settings_for(smtp_server)
        event = received(settings=settings)
        await consume(sessions, event, settings)
        async with transaction(sessions) as session:
            await service.route_event(session, event, settings=settings)
        [message] = await messages_of(sessions, event.complaint_id)
        await fire(sessions, message, settings, build_channels(settings))
        assert await pending_timer(sessions, message.delivery_key) is None
        assert len(smtp_server.recorder.envelopes) == 1

    async def test_a_channel_without_settings_fails_the_message_and_says_why(self, sessions):
        settings = settings_for()
        event = received(preferred="sms", settings=settings)
        await consume(sessions, event, settings)
        [message] = await messages_of(sessions, event.complaint_id)
        assert message.channel == "sms"
        await fire(sessions, message, settings, build_channels(settings))
        [failed] = await messages_of(sessions, event.complaint_id)
        assert (failed.status, failed.reason) == ("failed", "channel not configured")
        assert "notification.failed" in await outbox_events(sessions, event.complaint_id)

    async def test_a_configured_channel_is_preferred_over_an_unconfigured_one(
        self, sessions, smtp_server
    ):
        settings = settings_for(smtp_server)
        event = received(preferred="sms", settings=settings)
        await consume(sessions, event, settings)
        [message] = await messages_of(sessions, event.complaint_id)
        assert message.channel == "email"


class TestOrdering:
    async def test_a_case_opened_before_the_complaint_waits_for_the_contact(
        self, sessions, smtp_server
    ):
        settings = settings_for(smtp_server)
        complaint = received(settings=settings)
        await consume(sessions, case_opened(complaint), settings)
        [waiting] = await messages_of(sessions, complaint.complaint_id)
        assert (waiting.message_type, waiting.status, waiting.channel) == (
            "case.opened",
            "awaiting_contact",
            None,
        )
        await consume(sessions, complaint, settings)
        log = {m.message_type: m for m in await messages_of(sessions, complaint.complaint_id)}
        assert {m.status for m in log.values()} == {"queued"}
        assert log["case.opened"].channel == "email"

    async def test_an_erased_customer_is_told_nothing_more(self, sessions, smtp_server):
        settings = settings_for(smtp_server)
        complaint = received(settings=settings)
        await consume(sessions, complaint, settings)
        erased = new_event(
            CustomerErased(
                complaint_number=complaint.payload.complaint_number,
                customer_id=complaint.payload.customer_id,
                erased_at=datetime.now(UTC),
            ),
            producer="intake_service",
            complaint_id=complaint.complaint_id,
            correlation_id=complaint.correlation_id,
        )
        await consume(sessions, erased, settings)
        [receipt] = await messages_of(sessions, complaint.complaint_id)
        await fire(sessions, receipt, settings, build_channels(settings))
        await consume(sessions, case_opened(complaint), settings)
        log = {m.message_type: m for m in await messages_of(sessions, complaint.complaint_id)}
        assert (log["complaint.received"].status, log["complaint.received"].reason) == (
            "failed",
            "the customer was erased",
        )
        assert log["case.opened"].status == "skipped"
        assert smtp_server.recorder.envelopes == []


class TestQuietHours:
    async def test_an_sms_at_night_waits_for_the_morning_and_email_does_not(
        self, sessions, smtp_server, http_receiver
    ):
        settings = settings_for(smtp_server, sms_endpoint=http_receiver.url("/provider"))
        # 23:30 in Shanghai.
        with using_clock(ManualClock(datetime(2026, 11, 23, 15, 30, tzinfo=UTC))):
            sms = received(preferred="sms", settings=settings)
            await consume(sessions, sms, settings)
            email = received(preferred="email", settings=settings)
            await consume(sessions, email, settings)
        [held] = await messages_of(sessions, sms.complaint_id)
        assert (held.channel, held.reason) == ("sms", "delayed_by_quiet_hours")
        assert held.send_at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 08:00 local
        timer = await pending_timer(sessions, held.delivery_key)
        assert timer is not None
        assert timer.due_at == held.send_at
        [now] = await messages_of(sessions, email.complaint_id)
        assert (now.channel, now.reason) == ("email", "send_now")


class TestProviderSends:
    async def test_an_sms_goes_to_the_provider_with_the_messages_key(self, sessions, http_receiver):
        settings = settings_for(sms_endpoint=http_receiver.url("/provider"))
        event = received(preferred="sms", settings=settings)
        await consume(sessions, event, settings)
        [message] = await messages_of(sessions, event.complaint_id)
        await fire(sessions, message, settings, build_channels(settings))
        [request] = http_receiver.on("/provider")
        assert request.headers["idempotency-key"] == message.delivery_key
        assert request.json()["to"] == PHONE
        [sent] = await messages_of(sessions, event.complaint_id)
        assert (sent.status, sent.provider_reference) == ("sent", "prov-1")
        assert PHONE not in sent.provider_response, "the provider's echo is redacted"

    async def test_a_send_cut_short_is_sent_again_with_the_same_key_where_the_provider_dedupes(
        self, sessions, http_receiver
    ):
        settings = settings_for(sms_endpoint=http_receiver.url("/provider"))
        event = received(preferred="sms", settings=settings)
        await consume(sessions, event, settings)
        [message] = await messages_of(sessions, event.complaint_id)
        # What a process killed mid-send leaves: the attempt started, no outcome, timer pending.
        async with transaction(sessions) as session:
            await repository.start_attempt(session, message_id=message.id, now=datetime.now(UTC))
        await fire(sessions, message, settings, build_channels(settings))
        [sent] = await messages_of(sessions, event.complaint_id)
        assert (sent.status, sent.attempts) == ("sent", 2)
        assert [r.headers["idempotency-key"] for r in http_receiver.on("/provider")] == [
            message.delivery_key
        ]

    async def test_an_email_cut_short_is_recorded_uncertain_and_not_sent_again(
        self, sessions, smtp_server
    ):
        settings = settings_for(smtp_server)
        event = received(settings=settings)
        await consume(sessions, event, settings)
        [message] = await messages_of(sessions, event.complaint_id)
        async with transaction(sessions) as session:
            await repository.start_attempt(session, message_id=message.id, now=datetime.now(UTC))
        await fire(sessions, message, settings, build_channels(settings))
        [uncertain] = await messages_of(sessions, event.complaint_id)
        assert uncertain.status == "uncertain"
        assert "not sent again" in uncertain.reason
        assert smtp_server.recorder.envelopes == []
        assert "notification.failed" in await outbox_events(sessions, event.complaint_id)

    async def test_a_refusing_provider_is_retried_on_its_schedule_then_dead_lettered(
        self, sessions, http_receiver
    ):
        settings = settings_for(sms_endpoint=http_receiver.url("/status/503"))
        channels = build_channels(settings)
        event = received(preferred="sms", settings=settings)
        await consume(sessions, event, settings)
        [message] = await messages_of(sessions, event.complaint_id)
        for expected in ("retrying", "retrying", "dead_letter"):
            await fire(sessions, message, settings, channels)
            [message] = await messages_of(sessions, event.complaint_id)
            assert message.status == expected
        assert message.attempts == 3
        assert len(http_receiver.on("/status/503")) == 3
        async with transaction(sessions) as session:
            attempts = await repository.list_attempts(session, message_id=message.id)
        assert [a.provider_response for a in attempts] == ["503 answer 503"] * 3
        assert await pending_timer(sessions, message.delivery_key) is None


class TestStaff:
    async def test_an_sla_breach_is_emailed_to_the_configured_supervisor(
        self, sessions, smtp_server
    ):
        settings = settings_for(smtp_server)
        complaint = received(settings=settings)
        now = datetime.now(UTC)
        breach = new_event(
            ComplaintSlaBreached(
                complaint_number=complaint.payload.complaint_number,
                merchant_id="m-svc",
                team="logistics",
                priority="urgent",
                clock="first_response",
                due_at=now,
                breached_at=now,
            ),
            producer="triage_service",
            complaint_id=complaint.complaint_id,
            correlation_id=complaint.correlation_id,
        )
        await consume(sessions, breach, settings)
        log = {m.audience: m for m in await messages_of(sessions, complaint.complaint_id)}
        assert log["assigned_agent"].status == "skipped"
        assert log["supervisor"].status == "queued"
        await fire(sessions, log["supervisor"], settings, build_channels(settings))
        [envelope] = smtp_server.recorder.envelopes
        assert envelope.rcpt_tos == ["duty.supervisor@ops.example"]

    async def test_an_assignment_is_emailed_to_the_teams_agent_address(self, sessions, smtp_server):
        settings = settings_for(smtp_server).model_copy(
            update={"staff_emails": {"assigned_agent:logistics": "logistics.desk@ops.example"}}
        )
        complaint = received(settings=settings)
        opened = case_opened(complaint)
        assigned = case_change(
            CaseAssigned,
            complaint,
            opened,
            state="open",
            customer_visible_state="processing",
            trigger="assign",
            assignee_id="agent:li.na",
            team="logistics",
        )
        await consume(sessions, assigned, settings)
        [message] = [
            m
            for m in await messages_of(sessions, complaint.complaint_id)
            if m.message_type == "case.assigned"
        ]
        assert (message.audience, message.status) == ("assigned_agent", "queued")
        sent_before = len(smtp_server.recorder.envelopes)
        await fire(sessions, message, settings, build_channels(settings))
        envelope = smtp_server.recorder.envelopes[sent_before]
        assert envelope.rcpt_tos == ["logistics.desk@ops.example"]
        assert complaint.payload.complaint_number.encode() in envelope.content


def merchant(merchant_id: str) -> Principal:
    return Principal(role=Role.MERCHANT, subject=merchant_id, merchant_id=merchant_id)


async def register(
    sessions: async_sessionmaker[AsyncSession], merchant_id: str, url: str, settings: Settings
) -> Any:
    async with transaction(sessions) as session:
        return await service.create_endpoint(
            session,
            merchant_id=merchant_id,
            request=WebhookEndpointCreate(url=url),
            settings=settings,
            principal=merchant(merchant_id),
        )


class TestWebhooks:
    async def test_a_merchant_receives_signed_events_that_verify_and_carry_no_customer_data(
        self, sessions, http_receiver
    ):
        settings = settings_for(webhook_allow_internal_urls=True)
        merchant_id = f"m-{uuid.uuid4().hex[:8]}"
        endpoint = await register(sessions, merchant_id, http_receiver.url("/hook"), settings)
        assert endpoint.secret.startswith("whsec_")
        event = received(settings=settings)
        event = event.model_copy(
            update={"payload": event.payload.model_copy(update={"merchant_id": merchant_id})}
        )
        await consume(sessions, event, settings)
        log = {m.audience: m for m in await messages_of(sessions, event.complaint_id)}
        await fire(sessions, log["merchant"], settings, build_channels(settings))
        [request] = http_receiver.on("/hook")
        # Verified by the reference implementation of the convention, not by our own code.
        verified = StandardWebhook(endpoint.secret).verify(request.body, request.headers)
        assert verified["type"] == "complaint.received"
        assert verified["data"]["complaint_number"] == event.payload.complaint_number
        assert request.headers["webhook-id"] == log["merchant"].delivery_key
        assert not {"customer_id", "sealed_contact", "description"} & set(verified["data"])
        assert NAME not in request.body.decode()
        assert PHONE not in request.body.decode()

    async def test_a_failing_endpoint_is_retried_then_dead_lettered_then_replayed(
        self, sessions, http_receiver
    ):
        settings = settings_for(webhook_allow_internal_urls=True, webhook_retry_delays_seconds=[1])
        channels = build_channels(settings)
        merchant_id = f"m-{uuid.uuid4().hex[:8]}"
        endpoint = await register(
            sessions, merchant_id, http_receiver.url("/down-then-up"), settings
        )
        http_receiver.failures_left = 2
        complaint = received(settings=settings)
        opened = case_opened(complaint)
        opened = opened.model_copy(
            update={"payload": opened.payload.model_copy(update={"merchant_id": merchant_id})}
        )
        await consume(sessions, opened, settings)
        [hook] = [
            m for m in await messages_of(sessions, complaint.complaint_id) if m.channel == "webhook"
        ]
        for expected in ("retrying", "dead_letter"):
            await fire(sessions, hook, settings, channels)
            [hook] = [
                m
                for m in await messages_of(sessions, complaint.complaint_id)
                if m.channel == "webhook"
            ]
            assert hook.status == expected
        async with transaction(sessions) as session:
            replayed = await service.replay_dead_letters(
                session, endpoint_ids=[endpoint.endpoint_id]
            )
        assert replayed == [hook.id]
        await fire(sessions, hook, settings, channels)
        [hook] = [
            m for m in await messages_of(sessions, complaint.complaint_id) if m.channel == "webhook"
        ]
        assert (hook.status, hook.attempts) == ("sent", 3)
        assert {r.headers["webhook-id"] for r in http_receiver.on("/down-then-up")} == {
            hook.delivery_key
        }

    async def test_endpoints_are_the_merchants_own_and_internal_urls_are_refused(
        self, sessions, http_receiver
    ):
        strict = settings_for()
        merchant_id = f"m-{uuid.uuid4().hex[:8]}"
        for url in ("http://127.0.0.1:8080/x", "http://localhost/x", "http://10.1.2.3/x"):
            with pytest.raises(UnprocessableError):
                await register(sessions, merchant_id, url, strict)
        settings = settings_for(webhook_allow_internal_urls=True)
        endpoint = await register(sessions, merchant_id, http_receiver.url("/hook"), settings)
        async with transaction(sessions) as session:
            with pytest.raises(NotFoundError):
                await service.list_endpoints(
                    session, merchant_id=merchant_id, principal=merchant("m-other")
                )
            rotated = await service.rotate_endpoint_secret(
                session,
                merchant_id=merchant_id,
                endpoint_id=endpoint.endpoint_id,
                settings=settings,
                principal=merchant(merchant_id),
            )
            assert rotated.secret != endpoint.secret
            listed = await service.list_endpoints(
                session, merchant_id=merchant_id, principal=merchant(merchant_id)
            )
            assert [e.endpoint_id for e in listed.items] == [endpoint.endpoint_id]
            assert "secret" not in listed.items[0].model_dump()
            await service.delete_endpoint(
                session,
                merchant_id=merchant_id,
                endpoint_id=endpoint.endpoint_id,
                principal=merchant(merchant_id),
            )
            assert (
                await service.list_endpoints(
                    session, merchant_id=merchant_id, principal=merchant(merchant_id)
                )
            ).items == []


def storefront(storefront_id: str = "sf-test") -> Principal:
    return Principal(role=Role.STOREFRONT, subject=storefront_id, storefront_id=storefront_id)


class TestPreferences:
    async def test_stated_preferences_pick_the_channel_and_are_the_storefronts_own(
        self, sessions, smtp_server, http_receiver
    ):
        settings = settings_for(smtp_server, sms_endpoint=http_receiver.url("/provider"))
        first = received(preferred="sms", settings=settings)
        await consume(sessions, first, settings)
        customer = first.payload.customer_id
        async with transaction(sessions) as session:
            implied = await service.get_preferences(
                session, customer_id=customer, principal=storefront()
            )
            assert not implied.stated
            assert implied.preferences.channel_order == ("sms",)
            with pytest.raises(NotFoundError):
                await service.get_preferences(
                    session, customer_id=customer, principal=storefront("sf-other")
                )
            await service.put_preferences(
                session,
                customer_id=customer,
                preferences=CustomerPreferences(channel_order=("email",), quiet_hours=None),
                principal=storefront(),
            )
        second = received(preferred="sms", settings=settings)
        second = second.model_copy(
            update={"payload": second.payload.model_copy(update={"customer_id": customer})}
        )
        await consume(sessions, second, settings)
        [message] = await messages_of(sessions, second.complaint_id)
        assert message.channel == "email"

    async def test_triage_queues_nothing_for_the_customer_and_the_case_queues_one(
        self, sessions, smtp_server
    ):
        settings = settings_for(smtp_server)
        complaint = received(settings=settings)
        await consume(sessions, complaint, settings)
        await triage(sessions, triaged_as(complaint, "product"), settings)
        await consume(sessions, case_opened(complaint), settings)
        log = await messages_of(sessions, complaint.complaint_id)
        customer = [m.message_type for m in log if m.audience == "customer"]
        assert sorted(customer) == ["case.opened", "complaint.received"]
        assert {m.status for m in log if m.audience == "customer"} == {"queued"}

    async def test_erasure_forgets_the_customers_preferences(self, sessions, smtp_server):
        settings = settings_for(smtp_server)
        complaint = received(settings=settings)
        await consume(sessions, complaint, settings)
        customer = complaint.payload.customer_id
        async with transaction(sessions) as session:
            await service.put_preferences(
                session,
                customer_id=customer,
                preferences=CustomerPreferences(locale="en"),
                principal=storefront(),
            )
        erased = new_event(
            CustomerErased(
                complaint_number=complaint.payload.complaint_number,
                customer_id=customer,
                erased_at=datetime.now(UTC),
            ),
            producer="intake_service",
            complaint_id=complaint.complaint_id,
            correlation_id=complaint.correlation_id,
        )
        await consume(sessions, erased, settings)
        async with transaction(sessions) as session:
            assert await repository.get_preferences(session, customer_id=customer) is None


class TestPreview:
    def test_a_template_renders_with_its_sample_or_a_given_context(self):
        sample = service.preview_template(
            message_type="complaint.received",
            channel="email",
            locale="en",
            request=PreviewRequest(),
        )
        assert sample.template == "complaint.received/email.en.j2"
        assert "202405-000123" in sample.text
        assert sample.html is not None
        given = service.preview_template(
            message_type="case.opened",
            channel="sms",
            locale="zh-CN",
            request=PreviewRequest(
                context={
                    "complaint_number": "202411-000042",
                    "priority": "urgent",
                    "first_response_due_at": "2026-11-23T04:00:00Z",
                }
            ),
        )
        assert "202411-000042" in given.text
        with pytest.raises(UnprocessableError):
            service.preview_template(
                message_type="case.opened",
                channel="sms",
                locale="en",
                request=PreviewRequest(context={"complaint_number": "x"}),
            )
        with pytest.raises(NotFoundError):
            service.preview_template(
                message_type="case.opened",
                channel="webhook",
                locale="en",
                request=PreviewRequest(),
            )


async def fire_kind(
    sessions: async_sessionmaker[AsyncSession], kind: str, key: str, settings: Settings
) -> None:
    """Fires a pending survey or progress timer as the worker does."""
    async with transaction(sessions) as session:
        row = (
            await session.execute(
                select(timers).where(
                    timers.c.kind == kind, timers.c.key == key, timers.c.status == PENDING
                )
            )
        ).first()
        assert row is not None, f"no pending {kind} timer"
        timer = Timer.from_row(row)
        if kind == service.SURVEY_INVITE_TIMER:
            await service.invite_to_survey(session, timer, settings=settings)
        elif kind == service.PROGRESS_TIMER:
            await service.send_progress_update(session, timer, settings=settings)
        else:
            await service.remind_of_survey(session, timer, settings=settings)
        await session.execute(
            timers.update()
            .where(timers.c.id == timer.id, timers.c.status == PENDING)
            .values(status="fired", fired_at=datetime.now(UTC))
        )


ADMIN = Principal(role=Role.ADMIN, subject="ops")


class TestSurveys:
    async def test_a_survey_is_invited_reminded_once_and_answered_once(self, sessions, smtp_server):
        settings = settings_for(
            smtp_server,
            survey_invite_after_seconds=0,
            survey_remind_after_seconds=60,
            survey_valid_seconds=3600,
            survey_min_time_left_seconds=60,
        )
        complaint = received(settings=settings)
        await consume(sessions, complaint, settings)
        opened = case_opened(complaint)
        async with transaction(sessions) as session:
            await service.record_case(session, opened)
            survey = await service.request_survey(
                session,
                complaint_id=complaint.complaint_id,
                request=SurveyRequest(),
                settings=settings,
                principal=ADMIN,
            )
        async with transaction(sessions) as session:
            with pytest.raises(ConflictError):
                await service.request_survey(
                    session,
                    complaint_id=complaint.complaint_id,
                    request=SurveyRequest(),
                    settings=settings,
                    principal=ADMIN,
                )
        key = str(survey.case_id)
        await fire_kind(sessions, service.SURVEY_INVITE_TIMER, key, settings)
        log = {m.message_type: m for m in await messages_of(sessions, complaint.complaint_id)}
        invitation = log["notification.survey_invitation"]
        assert invitation.status == "queued"
        url = invitation.context["survey_url"]
        token = url.removeprefix(settings.survey_url_base)
        await fire(sessions, invitation, settings, build_channels(settings))
        [envelope] = smtp_server.recorder.envelopes
        mail = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(mail, EmailMessage)
        assert mail["X-Idempotency-Key"] == invitation.delivery_key
        body = mail.get_body(("plain",))
        assert body is not None
        assert url in body.get_content()

        later = datetime.now(UTC) + timedelta(seconds=120)
        with using_clock(ManualClock(later)):
            await fire_kind(sessions, service.SURVEY_REMIND_TIMER, key, settings)
        log = {m.message_type: m for m in await messages_of(sessions, complaint.complaint_id)}
        assert log["notification.survey_reminder"].context["survey_url"] == url

        answer = SurveyAnswer(score=4, reasons=("fast_response", "merchant_cooperative"))
        async with transaction(sessions) as session:
            receipt = await service.answer_survey(
                session, token=token, answer=answer, settings=settings
            )
        assert receipt.complaint_number == complaint.payload.complaint_number
        async with transaction(sessions) as session:
            with pytest.raises(ConflictError):
                await service.answer_survey(session, token=token, answer=answer, settings=settings)
        assert "survey.completed" in await outbox_events(sessions, complaint.complaint_id)
        async with transaction(sessions) as session:
            results = await service.list_surveys(
                session, merchant_id="m-svc", answered=True, limit=500, principal=ADMIN
            )
        [mine] = [s for s in results.items if s.case_id == survey.case_id]
        assert (mine.score, mine.subjects) == (4, ["merchant", "platform"])

    async def test_an_expired_or_tampered_link_is_refused(self, sessions):
        settings = settings_for(survey_valid_seconds=60, survey_remind_after_seconds=30)
        token = service.survey_tokens(settings).issue(
            SurveyScope(case_id=uuid.uuid4(), complaint_number="202411-000001")
        )
        answer = SurveyAnswer(score=5)
        async with transaction(sessions) as session:
            with pytest.raises(NotFoundError):
                await service.answer_survey(
                    session, token=token[:-2] + "xx", answer=answer, settings=settings
                )
        with using_clock(ManualClock(datetime.now(UTC) + timedelta(minutes=5))):
            async with transaction(sessions) as session:
                with pytest.raises(GoneError):
                    await service.answer_survey(
                        session, token=token, answer=answer, settings=settings
                    )


def case_resolved(
    complaint: EventEnvelope[ComplaintReceived], opened: EventEnvelope[CaseOpened]
) -> EventEnvelope[CaseResolved]:
    """Resolution's word that the complaint's case is resolved."""
    now = datetime.now(UTC)
    return new_event(
        CaseResolved(
            case_id=opened.payload.case_id,
            complaint_number=complaint.payload.complaint_number,
            merchant_id="m-svc",
            team="logistics",
            state="resolved",
            previous_state="executing",
            customer_visible_state="completed",
            trigger="all_tasks_done",
            actor="resolution_service",
            at=now,
            reason="refunded in full",
            resolved_at=now,
            appeal_window_ends_at=now + timedelta(days=7),
        ),
        producer="resolution_service",
        complaint_id=complaint.complaint_id,
        correlation_id=complaint.correlation_id,
    )


class TestCaseResolved:
    async def test_the_outcome_is_told_and_one_survey_is_scheduled_however_often_it_comes(
        self, sessions, smtp_server
    ):
        settings = settings_for(smtp_server)
        complaint = received(settings=settings)
        await consume(sessions, complaint, settings)
        opened = case_opened(complaint)
        async with transaction(sessions) as session:
            await service.record_case(session, opened)
        resolved = case_resolved(complaint, opened)
        for _ in range(2):
            async with transaction(sessions) as session:
                await service.route_event(session, resolved, settings=settings)
                await service.survey_resolved_case(session, resolved, settings=settings)
        log = [
            m
            for m in await messages_of(sessions, complaint.complaint_id)
            if m.message_type == "case.resolved"
        ]
        assert [(m.audience, m.status) for m in log] == [("customer", "queued")]
        async with transaction(sessions) as session:
            survey = await repository.get_survey(session, case_id=opened.payload.case_id)
        assert survey is not None
        assert survey.requested_by == "resolution_service"
        invite = await pending_timer(sessions, str(opened.payload.case_id))
        assert invite is not None
        assert invite.due_at == survey.resolved_at + timedelta(hours=2)
        async with transaction(sessions) as session:
            with pytest.raises(ConflictError):
                await service.request_survey(
                    session,
                    complaint_id=complaint.complaint_id,
                    request=SurveyRequest(),
                    settings=settings,
                    principal=ADMIN,
                )
        await fire(sessions, log[0], settings, build_channels(settings))
        [sent] = [
            m
            for m in await messages_of(sessions, complaint.complaint_id)
            if m.message_type == "case.resolved"
        ]
        assert sent.status == "sent"


def case_change(
    cls: type[Any],
    complaint: EventEnvelope[ComplaintReceived],
    opened: EventEnvelope[CaseOpened],
    team: str = "merchant_management",
    **facts: Any,
) -> EventEnvelope[Any]:
    """A lifecycle event of the complaint's case."""
    now = datetime.now(UTC)
    return new_event(
        cls(
            case_id=opened.payload.case_id,
            complaint_number=complaint.payload.complaint_number,
            merchant_id="m-svc",
            team=team,
            actor="agent:alice",
            at=now,
            **facts,
        ),
        producer="resolution_service",
        complaint_id=complaint.complaint_id,
        correlation_id=complaint.correlation_id,
    )


class TestDecisionsReachTheCustomer:
    async def test_the_offer_and_a_rejection_are_emailed_with_their_content(
        self, sessions, smtp_server
    ):
        settings = settings_for(smtp_server)
        channels = build_channels(settings)
        complaint = received(settings=settings)
        await consume(sessions, complaint, settings)
        opened = case_opened(complaint)
        offered = case_change(
            CaseRemedyOffered,
            complaint,
            opened,
            state="awaiting_customer",
            customer_visible_state="awaiting_customer_confirmation",
            trigger="offer_to_customer",
            remedies=[
                RemedyLine(kind="refund", amount=Decimal("299.00"), description="full refund"),
                RemedyLine(kind="coupon", amount=Decimal("50.00"), description="no threshold"),
            ],
        )
        rejected = case_change(
            CaseRejected,
            complaint,
            opened,
            state="rejected",
            customer_visible_state="completed",
            trigger="reject_case",
            reason="the unboxing video shows the item intact on delivery",
            appeal_window_ends_at=datetime.now(UTC) + timedelta(days=30),
        )
        for event in (offered, rejected):
            await consume(sessions, event, settings)
        queued = {
            m.message_type: m
            for m in await messages_of(sessions, complaint.complaint_id)
            if m.message_type in ("case.remedy_offered", "case.rejected")
        }
        assert {t: (m.audience, m.status) for t, m in queued.items()} == {
            "case.remedy_offered": ("customer", "queued"),
            "case.rejected": ("customer", "queued"),
        }
        sent_before = len(smtp_server.recorder.envelopes)
        for message in queued.values():
            await fire(sessions, message, settings, channels)
        texts = []
        for envelope in smtp_server.recorder.envelopes[sent_before:]:
            mail = message_from_bytes(envelope.content, policy=default_policy)
            assert isinstance(mail, EmailMessage)
            body = mail.get_body(("plain",))
            assert body is not None
            texts.append(body.get_content())
        offer, decision = texts
        assert "299.00" in offer
        assert "50.00" in offer
        assert "the unboxing video shows the item intact on delivery" in decision


def triaged_as(
    complaint: EventEnvelope[ComplaintReceived], category: str
) -> EventEnvelope[ComplaintTriaged]:
    now = datetime.now(UTC)
    return new_event(
        ComplaintTriaged(
            complaint_number=complaint.payload.complaint_number,
            merchant_id="m-svc",
            category=category,
            priority="general",
            team=category,
            provisional=False,
            first_response_due_at=now + timedelta(hours=24),
            triaged_at=now,
        ),
        producer="triage_service",
        complaint_id=complaint.complaint_id,
        correlation_id=complaint.correlation_id,
    )


async def triage(
    sessions: async_sessionmaker[AsyncSession],
    event: EventEnvelope[ComplaintTriaged],
    settings: Settings,
) -> None:
    async with transaction(sessions) as session:
        await service.route_event(session, event, settings=settings)
        await service.start_progress_updates(session, event, settings=settings)


class TestProgressUpdates:
    async def test_an_open_logistics_complaint_hears_every_interval_until_resolved(
        self, sessions, smtp_server
    ):
        settings = settings_for(smtp_server, progress_interval_seconds=60)
        complaint = received(settings=settings)
        await consume(sessions, complaint, settings)
        await triage(sessions, triaged_as(complaint, "logistics"), settings)
        key = str(complaint.complaint_id)
        first = await pending_timer(sessions, key)
        assert first is not None
        for _ in range(2):
            await fire_kind(sessions, service.PROGRESS_TIMER, key, settings)
        updates = [
            m
            for m in await messages_of(sessions, complaint.complaint_id)
            if m.message_type == "notification.progress_update"
        ]
        assert [m.status for m in updates] == ["queued", "queued"]
        assert len({m.delivery_key for m in updates}) == 2
        assert await pending_timer(sessions, key) is not None, "the next one is scheduled"

        opened = case_opened(complaint)
        async with transaction(sessions) as session:
            await service.record_case(session, opened)
            await service.stop_progress_updates(session, case_resolved(complaint, opened))
        assert await pending_timer(sessions, key) is None
        async with transaction(sessions) as session:
            progress = await repository.get_progress(session, complaint_id=complaint.complaint_id)
        assert progress is not None
        assert (progress.sent, progress.stop_reason) == (2, "case.resolved")

    async def test_other_categories_get_none_and_opted_out_customers_skip_them(
        self, sessions, smtp_server
    ):
        settings = settings_for(smtp_server, progress_interval_seconds=60)
        quality = received(settings=settings)
        await consume(sessions, quality, settings)
        await triage(sessions, triaged_as(quality, "product_quality"), settings)
        assert await pending_timer(sessions, str(quality.complaint_id)) is None

        opted_out = received(settings=settings)
        async with transaction(sessions) as session:
            await service.put_preferences(
                session,
                customer_id=opted_out.payload.customer_id,
                preferences=CustomerPreferences(non_essential_opt_out=True),
                principal=storefront(),
            )
        await consume(sessions, opted_out, settings)
        await triage(sessions, triaged_as(opted_out, "logistics"), settings)
        await fire_kind(sessions, service.PROGRESS_TIMER, str(opted_out.complaint_id), settings)
        [update] = [
            m
            for m in await messages_of(sessions, opted_out.complaint_id)
            if m.message_type == "notification.progress_update"
        ]
        assert (update.status, update.reason) == ("skipped", "opted_out_of_non_essential")
