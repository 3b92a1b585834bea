"""Notification end to end: the four services on a platform of their own.

The platform gets its own database and topics, and its notification process sends on real
local servers that the tests start: an SMTP server (aiosmtpd) and an HTTP provider for SMS
(uvicorn, deduplicating by Idempotency-Key as the adapter's contract says). Its settings are
the ordinary ones: the channels' endpoints, retry delays of seconds, a quick timer poll.
"""

import asyncio
import itertools
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook as StandardWebhook

from notification_service.config import DEV_ONLY_SURVEY_KEY
from notification_service.domain.surveys import SurveyScope, SurveyTokens
from services.catalog import BY_NAME
from shared.clock import ManualClock
from shared.events import Topic
from shared.messaging import create_producer
from tests.notification.conftest import HttpReceiver, SmtpRecorder, _receiver_app, free_port
from tests.support.auth import MERCHANT, OTHER_MERCHANT, STOREFRONT, bearer
from tests.support.complaints import complaint_body, post_complaint
from tests.support.kafka import read_all
from tests.support.platform import Platform, running_platform, service_test_env
from tests.support.stack import StackUnderTest, create_test_stack, destroy_test_stack
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

FLOW_PORT_OFFSET = 13_000  # 21001-21004: beside `make up`, the e2e and the other flow platforms
SMTP_PORT = free_port()
PROVIDER_PORT = free_port()
PROVIDER_URL = f"http://127.0.0.1:{PROVIDER_PORT}"
SENDER = "care@shop.example"


def flow_env(name: str) -> dict[str, str]:
    """Test settings, consumer groups of this platform's own, notification on local servers."""
    prefix = BY_NAME[name].env_prefix
    env = {**service_test_env(name), f"{prefix}CONSUMER_GROUP": f"{name}-service-notify-flow"}
    if name == "notification":
        env |= {
            "NOTIFICATION_SMTP_HOST": "127.0.0.1",
            "NOTIFICATION_SMTP_PORT": str(SMTP_PORT),
            "NOTIFICATION_SMTP_FROM": SENDER,
            "NOTIFICATION_SMS_ENDPOINT": f"{PROVIDER_URL}/slow-provider",
            "NOTIFICATION_SMS_API_KEY": "flow-key",
            "NOTIFICATION_PROVIDER_TIMEOUT_SECONDS": "30",
            "NOTIFICATION_PROVIDER_RETRY_DELAYS_SECONDS": "[1, 1, 1]",
            "NOTIFICATION_TIMER_POLL_INTERVAL_SECONDS": "0.2",
            # The merchants' receivers run on loopback here.
            "NOTIFICATION_WEBHOOK_ALLOW_INTERNAL_URLS": "true",
            "NOTIFICATION_WEBHOOK_RETRY_DELAYS_SECONDS": "[1, 2]",
            "NOTIFICATION_SURVEY_INVITE_AFTER_SECONDS": "0",
            "NOTIFICATION_PROGRESS_INTERVAL_SECONDS": "2",
        }
    return env


@dataclass
class Flow:
    """The platform, the stack it runs on, and the servers it sends to."""

    stack: StackUnderTest
    platform: Platform
    smtp: SmtpRecorder
    provider: HttpReceiver

    def url(self, name: str) -> str:
        return self.platform.url(name)

    def topic(self, topic: Topic) -> str:
        return f"{self.stack.config.topic_prefix}{topic.value}"


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[HttpReceiver]:
    """The SMS provider: a real HTTP server on loopback."""
    receiver = HttpReceiver(slow_seconds=0.0)
    server = uvicorn.Server(
        uvicorn.Config(
            _receiver_app(receiver),
            host="127.0.0.1",
            port=PROVIDER_PORT,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        assert not serving.done(), "the SMS provider stopped while starting"
        await asyncio.sleep(0.01)
    receiver.base_url = PROVIDER_URL
    try:
        yield receiver
    finally:
        server.should_exit = True
        server.force_exit = True
        await serving


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpRecorder]:
    """The SMTP server, aiosmtpd on its own thread."""
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def flow(stack: StackUnderTest, smtp: SmtpRecorder, provider: HttpReceiver) -> Iterator[Flow]:
    """The four services on a database and topics of their own."""
    private = create_test_stack(stack.config)
    try:
        with running_platform(
            private,
            port_offset=FLOW_PORT_OFFSET,
            label="notification-flow",
            services=("intake", "triage", "resolution", "notification"),
            service_env=flow_env,
        ) as platform:
            yield Flow(stack=private, platform=platform, smtp=smtp, provider=provider)
    finally:
        destroy_test_stack(private)


def body(n: int, preferred: str) -> dict[str, Any]:
    """A complete complaint of its own customer, reached on the preferred channel."""
    made = complaint_body(n)
    made["customer"]["customer_id"] = f"cust-{uuid.uuid4().hex[:8]}"
    made["customer"]["preferred_channel"] = preferred
    return made


async def post(http: httpx.AsyncClient, flow: Flow, made: dict[str, Any]) -> dict[str, Any]:
    response = await post_complaint(http, flow.url("intake"), made)
    assert response.status_code == 201, response.text
    receipt: dict[str, Any] = response.json()
    return receipt


async def message_log(
    http: httpx.AsyncClient, flow: Flow, complaint_id: str
) -> list[dict[str, Any]]:
    response = await http.get(f"{flow.url('notification')}/v1/complaints/{complaint_id}")
    if response.status_code != 200:
        return []
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def settled(
    http: httpx.AsyncClient, flow: Flow, complaint_id: str, *, timeout_s: float = 60
) -> dict[str, Any]:
    """The receipt once it has left (sent) or been given up."""

    async def done() -> dict[str, Any] | None:
        for message in await message_log(http, flow, complaint_id):
            if message["message_type"] == "complaint.received" and message["status"] in (
                "sent",
                "failed",
                "uncertain",
                "dead_letter",
            ):
                return message
        return None

    found: dict[str, Any] = await wait_until(done, timeout_s=timeout_s, what="the receipt")
    return found


def mails_to(smtp: SmtpRecorder, address: str, key: str | None = None) -> list[EmailMessage]:
    """What the SMTP server received for an address (of one message, when its key is given)."""
    found = []
    for envelope in smtp.envelopes:
        if address in envelope.rcpt_tos:
            mail = message_from_bytes(envelope.content, policy=default_policy)
            assert isinstance(mail, EmailMessage)
            if key is None or mail["X-Idempotency-Key"] == key:
                found.append(mail)
    return found


class TestEmail:
    async def test_a_complaints_receipt_reaches_the_smtp_server(self, flow, http):
        made = body(301, "email")
        receipt = await post(http, flow, made)
        message = await settled(http, flow, receipt["complaint_id"])
        assert message["status"] == "sent", message
        [mail] = mails_to(flow.smtp, made["customer"]["email"], message["delivery_key"])
        assert mail["From"].addresses[0].addr_spec == SENDER
        assert receipt["complaint_number"] in str(mail["Subject"])
        assert mail["Message-ID"].startswith("<msg_")
        assert mail["Message-ID"] == f"<{message['delivery_key']}@shop.example>"
        text = mail.get_body(("plain",))
        assert text is not None
        assert receipt["complaint_number"] in text.get_content()
        assert made["customer"]["name"] in text.get_content()
        assert made["customer"]["name"] not in message["body"], "the log is redacted"
        assert receipt["complaint_number"] in message["body"]

    async def test_an_event_delivered_twice_sends_one_email(self, flow, http):
        made = body(302, "email")
        receipt = await post(http, flow, made)
        first = await settled(http, flow, receipt["complaint_id"])
        topic = flow.topic(Topic.INTAKE_COMPLAINT)
        [original] = [
            m
            for m in await read_all(flow.stack.config.kafka_bootstrap, topic)
            if m.key == receipt["complaint_id"].encode()
            and m.header("event_type") == "complaint.received"
        ]
        producer = create_producer(flow.stack.config.kafka_bootstrap, client_id="dup")
        await producer.start()
        try:
            await producer.send_and_wait(
                topic, value=original.value, key=original.key, headers=list(original.headers)
            )
        finally:
            await producer.stop()
        # The duplicate is behind a marker complaint on the same path: once the marker's
        # receipt is out, the duplicate has been consumed too (or was on another partition
        # and is given the same time).
        marker = await post(http, flow, body(303, "email"))
        await settled(http, flow, marker["complaint_id"])
        await asyncio.sleep(1.0)  # the timer poll, were a second message stored
        assert len(mails_to(flow.smtp, made["customer"]["email"], first["delivery_key"])) == 1
        receipts = [
            m
            for m in await message_log(http, flow, receipt["complaint_id"])
            if m["message_type"] == "complaint.received"
        ]
        assert len(receipts) == 1


class TestKillMidSend:
    async def test_a_notification_killed_during_an_sms_send_sends_it_once_after_restart(
        self, flow, http
    ):
        flow.provider.slow_seconds = 8.0
        made = body(304, "sms")
        try:
            receipt = await post(http, flow, made)

            async def sending() -> bool:
                # The receipt goes first; the case's message to the same phone later.
                return any(
                    r.json()["to"] == made["customer"]["phone"]
                    and receipt["complaint_number"] in r.json()["text"]
                    for r in flow.provider.on("/slow-provider")
                )

            await wait_until(sending, timeout_s=30, what="the send to start")
            flow.platform.kill("notification")
            flow.provider.slow_seconds = 0.0
            flow.platform.restart("notification")
            message = await settled(http, flow, receipt["complaint_id"])
        finally:
            flow.provider.slow_seconds = 0.0
        assert message["status"] == "sent", message
        requests = [
            r
            for r in flow.provider.on("/slow-provider")
            if r.headers["idempotency-key"] == message["delivery_key"]
        ]
        assert len(requests) >= 2, "the send cut short was made again"
        assert [a["status"] for a in message["attempts"]] == ["sent"]
        assert message["attempts"][0]["attempt"] == len(requests)
        key = message["delivery_key"]
        assert message["attempts"][0]["provider_reference"] == flow.provider.sent_by_key[key]

    async def test_a_kill_during_a_send_burst_loses_and_doubles_nothing(self, flow, http):
        flow.provider.slow_seconds = 0.3
        made = [body(330 + n, "sms") for n in range(10)]
        try:
            receipts = [await post(http, flow, m) for m in made]
            phones = {m["customer"]["phone"] for m in made}

            async def sending() -> bool:
                # Some sends of the burst are out, most are not yet.
                started = [
                    r for r in flow.provider.on("/slow-provider") if r.json()["to"] in phones
                ]
                return len(started) >= 4

            await wait_until(sending, timeout_s=60, what="the burst to start")
            flow.platform.kill("notification")
            flow.platform.restart("notification")

            async def all_sent() -> list[dict[str, Any]] | None:
                logs = [await message_log(http, flow, r["complaint_id"]) for r in receipts]
                customer = [m for log in logs for m in log if m["audience"] == "customer"]
                expected = 2 * len(receipts)  # the receipt and the case's message each
                done = len(customer) == expected and all(m["status"] == "sent" for m in customer)
                return customer if done else None

            messages = await wait_until(all_sent, timeout_s=120, what="every message sent")
        finally:
            flow.provider.slow_seconds = 0.0
        keys = [m["delivery_key"] for m in messages]
        assert len(set(keys)) == len(keys), "one message per event and recipient"
        for message in messages:
            # Sent once: every attempt of a message carried its key, the provider kept one send.
            [sent] = [a for a in message["attempts"] if a["status"] == "sent"]
            assert sent["provider_reference"] == flow.provider.sent_by_key[message["delivery_key"]]
        asked = {
            r.headers["idempotency-key"]
            for r in flow.provider.on("/slow-provider")
            if r.json()["to"] in phones
        }
        assert asked == set(keys), "nothing lost, nothing sent under another key"


async def message_of(
    http: httpx.AsyncClient,
    flow: Flow,
    complaint_id: str,
    message_type: str,
    *,
    audience: str = "customer",
    status: tuple[str, ...] = (),
    timeout_s: float = 60,
) -> dict[str, Any]:
    """One message of a complaint's log, once it exists (and is in one of `status`)."""

    async def found() -> dict[str, Any] | None:
        for message in await message_log(http, flow, complaint_id):
            if (message["message_type"], message["audience"]) == (message_type, audience) and (
                not status or message["status"] in status
            ):
                return message
        return None

    message: dict[str, Any] = await wait_until(
        found, timeout_s=timeout_s, what=f"{message_type} to the {audience} ({status})"
    )
    return message


def body_for_merchant(n: int, merchant_id: str, preferred: str = "email") -> dict[str, Any]:
    made = body(n, preferred)
    made["merchant_id"] = merchant_id
    return made


class TestMerchantWebhooks:
    async def test_a_merchant_registers_an_endpoint_and_receives_signed_events(self, flow, http):
        url = f"{flow.url('notification')}/v1/merchants/m-1/webhook-endpoints"
        created = await http.post(
            url, json={"url": flow.provider.url("/hook")}, headers=MERCHANT.headers()
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()
        secret = endpoint["secret"]
        listed = await http.get(url, headers=MERCHANT.headers())
        assert "secret" not in listed.json()["items"][0]
        other = await http.get(
            f"{flow.url('notification')}/v1/merchants/m-1/webhook-endpoints",
            headers=OTHER_MERCHANT.headers(),
        )
        assert other.status_code == 404

        receipt = await post(http, flow, body_for_merchant(305, "m-1"))
        sent = await message_of(
            http,
            flow,
            receipt["complaint_id"],
            "complaint.received",
            audience="merchant",
            status=("sent",),
        )
        [request] = [
            r
            for r in flow.provider.on("/hook")
            if r.json()["data"].get("complaint_number") == receipt["complaint_number"]
            and r.json()["type"] == "complaint.received"
        ]
        verified = StandardWebhook(secret).verify(request.body, request.headers)
        assert verified["type"] == "complaint.received"
        assert "customer_id" not in verified["data"]
        assert sent["attempts"][0]["status"] == "sent"

        rotated = await http.post(
            f"{url}/{endpoint['endpoint_id']}/secret", headers=MERCHANT.headers()
        )
        assert rotated.status_code == 200
        assert rotated.json()["secret"] != secret
        deleted = await http.delete(f"{url}/{endpoint['endpoint_id']}", headers=MERCHANT.headers())
        assert deleted.status_code == 204

    async def test_a_failing_endpoint_is_retried_with_backoff_then_dead_lettered(self, flow, http):
        merchant_id = f"m-{uuid.uuid4().hex[:6]}"
        created = await http.post(
            f"{flow.url('notification')}/v1/merchants/{merchant_id}/webhook-endpoints",
            json={"url": flow.provider.url("/status/500")},
        )
        assert created.status_code == 201, created.text
        receipt = await post(http, flow, body_for_merchant(306, merchant_id))
        dead = await message_of(
            http,
            flow,
            receipt["complaint_id"],
            "complaint.received",
            audience="merchant",
            status=("dead_letter",),
        )
        assert [a["status"] for a in dead["attempts"]] == ["failed"] * 3
        assert all(a["provider_response"].startswith("500") for a in dead["attempts"])
        times = [datetime.fromisoformat(a["attempted_at"]) for a in dead["attempts"]]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # Backoff of 1 s then 2 s (each jittered by up to 10%).
        assert gaps[0] >= timedelta(seconds=0.9)
        assert gaps[1] >= timedelta(seconds=1.8)
        tries = [
            r
            for r in flow.provider.on("/status/500")
            if r.headers["webhook-id"] == dead["delivery_key"]
        ]
        assert len(tries) == 3, "every retry carries the message's one webhook-id"

        replay = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "notification_service.replay",
            "--message",
            dead["message_id"],
            env={
                **os.environ,
                "NOTIFICATION_DATABASE_URL": flow.stack.config.service_database_url(
                    BY_NAME["notification"]
                ),
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(replay.communicate(), 60)
        assert replay.returncode == 0, stderr.decode()
        assert stdout.decode().split() == [dead["message_id"]]

        async def replayed_and_dead_again() -> bool:
            message = await message_of(
                http, flow, receipt["complaint_id"], "complaint.received", audience="merchant"
            )
            return message["status"] == "dead_letter" and len(message["attempts"]) == 6

        await wait_until(replayed_and_dead_again, timeout_s=60, what="the replayed schedule")

    async def test_an_endpoint_down_for_a_while_receives_the_message_when_it_comes_back(
        self, flow, http
    ):
        merchant_id = f"m-{uuid.uuid4().hex[:6]}"
        created = await http.post(
            f"{flow.url('notification')}/v1/merchants/{merchant_id}/webhook-endpoints",
            json={"url": flow.provider.url("/down-then-up")},
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        flow.provider.failures_left = 1
        receipt = await post(http, flow, body_for_merchant(312, merchant_id))

        async def retried_and_delivered() -> dict[str, Any] | None:
            # The first webhook of this endpoint met the outage (the receipt's, or the case's).
            for message in await message_log(http, flow, receipt["complaint_id"]):
                attempts = [a["status"] for a in message["attempts"]]
                if message["audience"] == "merchant" and attempts == ["failed", "sent"]:
                    return message
            return None

        delivered = await wait_until(retried_and_delivered, timeout_s=60, what="the retry")
        tries = [
            r
            for r in flow.provider.on("/down-then-up")
            if r.headers["webhook-id"] == delivered["delivery_key"]
        ]
        assert len(tries) == 2
        # The attempt that got through verifies with the reference library.
        verified = StandardWebhook(secret).verify(tries[-1].body, tries[-1].headers)
        assert verified["data"]["complaint_number"] == receipt["complaint_number"]


class TestPreferences:
    async def test_quiet_hours_hold_an_sms_until_they_end(self, flow, http):
        made = body(307, "sms")
        customer = made["customer"]["customer_id"]
        local = datetime.now(ZoneInfo("Asia/Shanghai"))
        start, end = (local - timedelta(hours=1)).time(), (local + timedelta(hours=1)).time()
        stated = await http.put(
            f"{flow.url('notification')}/v1/customers/{customer}/preferences",
            json={
                "channel_order": ["sms"],
                "quiet_hours": {
                    "start": start.strftime("%H:%M"),
                    "end": end.strftime("%H:%M"),
                },
            },
            headers=STOREFRONT.headers(),
        )
        assert stated.status_code == 200, stated.text
        receipt = await post(http, flow, made)
        held = await message_of(http, flow, receipt["complaint_id"], "complaint.received")
        assert (held["channel"], held["status"], held["reason"]) == (
            "sms",
            "queued",
            "delayed_by_quiet_hours",
        )
        assert datetime.fromisoformat(held["send_at"]) > datetime.now(UTC) + timedelta(minutes=30)
        assert not [
            r
            for r in flow.provider.on("/slow-provider")
            if r.json()["to"] == made["customer"]["phone"]
        ]

    async def test_the_customer_hears_of_the_receipt_and_the_case_not_of_triage(self, flow, http):
        made = body(308, "email")
        receipt = await post(http, flow, made)
        case = await message_of(
            http, flow, receipt["complaint_id"], "case.opened", status=("sent",)
        )
        sent = await settled(http, flow, receipt["complaint_id"])
        assert sent["status"] == "sent"
        told = [
            m["message_type"]
            for m in await message_log(http, flow, receipt["complaint_id"])
            if m["audience"] == "customer"
        ]
        # Triage came between the two; case.opened says what it would have, seconds later.
        assert sorted(told) == ["case.opened", "complaint.received"]
        assert len(mails_to(flow.smtp, made["customer"]["email"], case["delivery_key"])) == 1


class TestSurvey:
    async def test_a_survey_link_is_answered_once_without_signing_in(self, flow, http):
        made = body(309, "email")
        receipt = await post(http, flow, made)
        complaint_id = receipt["complaint_id"]

        async def requested() -> dict[str, Any] | None:
            response = await http.post(
                f"{flow.url('notification')}/v1/complaints/{complaint_id}/survey", json={}
            )
            # 404 until case.opened has reached notification.
            return response.json() if response.status_code == 201 else None

        survey = await wait_until(requested, timeout_s=60, what="the survey request")
        again = await http.post(
            f"{flow.url('notification')}/v1/complaints/{complaint_id}/survey", json={}
        )
        assert again.status_code == 409
        invitation = await message_of(
            http, flow, complaint_id, "notification.survey_invitation", status=("sent",)
        )
        [mail] = mails_to(flow.smtp, made["customer"]["email"], invitation["delivery_key"])
        text = mail.get_body(("plain",))
        assert text is not None
        [link] = [word for word in text.get_content().split() if "/survey/" in word]
        token = link.rsplit("/", 1)[1]

        async with httpx.AsyncClient(timeout=10) as anonymous:
            url = f"{flow.url('notification')}/v1/surveys/{token}"
            answer = {"score": 2, "reasons": ["slow_response"], "comment": "took a week"}
            first = await anonymous.post(url, json=answer)
            assert first.status_code == 201, first.text
            assert first.json()["complaint_number"] == receipt["complaint_number"]
            second = await anonymous.post(url, json=answer)
            assert second.status_code == 409
            assert second.headers["content-type"] == "application/problem+json"
            tampered = await anonymous.post(f"{url[:-3]}abc", json=answer)
            assert tampered.status_code == 404

        results = await http.get(
            f"{flow.url('notification')}/v1/surveys",
            params={"merchant_id": made["merchant_id"], "answered": "true"},
            headers=bearer("test-supervisor"),
        )
        assert results.status_code == 200, results.text
        [mine] = [s for s in results.json()["items"] if s["case_id"] == survey["case_id"]]
        assert (mine["score"], mine["reasons"], mine["subjects"]) == (
            2,
            ["slow_response"],
            ["platform"],
        )
        events = [
            m
            for m in await read_all(
                flow.stack.config.kafka_bootstrap, flow.topic(Topic.NOTIFICATION_DELIVERY)
            )
            if m.header("event_type") == "survey.completed" and m.key == complaint_id.encode()
        ]
        assert len(events) == 1
        assert b"took a week" not in (events[0].value or b""), "the comment stays here"

    async def test_guessing_links_from_one_address_is_slowed_to_429(self, flow):
        # Each link that names no survey spends a failure token of the caller's address
        # (burst 50, its own bucket: failed sign-ins elsewhere in the suite are not touched).
        url = f"{flow.url('notification')}/v1/surveys"
        answer = {"score": 5, "reasons": [], "comment": None}
        async with httpx.AsyncClient(timeout=10) as anonymous:
            answers = [
                await anonymous.post(f"{url}/guess{n:04d}-{'x' * 24}", json=answer)
                for n in range(60)
            ]
        codes = [a.status_code for a in answers]
        assert set(codes) == {404, 429}, codes
        assert codes.index(429) > 0, "some guesses are answered before the limit"
        limited = answers[codes.index(429)]
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1

    async def test_an_expired_survey_link_is_refused(self, flow):
        long_ago = ManualClock(datetime.now(UTC) - timedelta(days=8))
        token = SurveyTokens(DEV_ONLY_SURVEY_KEY, clock=long_ago).issue(
            SurveyScope(case_id=uuid.uuid4(), complaint_number="202411-000001")
        )
        async with httpx.AsyncClient(timeout=10) as anonymous:
            response = await anonymous.post(
                f"{flow.url('notification')}/v1/surveys/{token}", json={"score": 5}
            )
        assert response.status_code == 410


def parcel_complaint(n: int) -> dict[str, Any]:
    """A complaint triage files under logistics: the parcel is late."""
    made = body(n, "email")
    made.update(
        category_hint="logistics",
        target="logistics",
        description="The parcel never arrived and tracking has not moved for a week.",
    )
    return made


class TestProgressUpdates:
    async def test_an_open_logistics_complaint_gets_updates_and_an_opted_out_customer_none(
        self, flow, http
    ):
        hearing = parcel_complaint(310)
        silent = parcel_complaint(311)
        stated = await http.put(
            f"{flow.url('notification')}/v1/customers/"
            f"{silent['customer']['customer_id']}/preferences",
            json={"channel_order": ["email"], "non_essential_opt_out": True},
            headers=STOREFRONT.headers(),
        )
        assert stated.status_code == 200, stated.text
        told = await post(http, flow, hearing)
        not_told = await post(http, flow, silent)

        async def updates(complaint_id: str, status: str) -> list[dict[str, Any]]:
            return [
                m
                for m in await message_log(http, flow, complaint_id)
                if m["message_type"] == "notification.progress_update" and m["status"] == status
            ]

        async def two_sent() -> bool:
            return len(await updates(told["complaint_id"], "sent")) >= 2

        await wait_until(two_sent, timeout_s=60, what="two progress updates")
        sent = await updates(told["complaint_id"], "sent")
        assert len({m["delivery_key"] for m in sent}) == len(sent), "each update is a message"
        mails = mails_to(flow.smtp, hearing["customer"]["email"], sent[0]["delivery_key"])
        assert len(mails) == 1

        async def skipped() -> list[dict[str, Any]]:
            return await updates(not_told["complaint_id"], "skipped")

        [first, *_] = await wait_until(skipped, timeout_s=60, what="a skipped update")
        assert first["reason"] == "opted_out_of_non_essential"
        assert await updates(not_told["complaint_id"], "sent") == []

    async def test_updates_say_what_the_merchant_reports_until_the_parcel_is_delivered(
        self, flow, http
    ):
        made = {**parcel_complaint(312), "merchant_id": "m-1"}
        receipt = await post(http, flow, made)
        complaint_id = receipt["complaint_id"]
        parcel_url = f"{flow.url('notification')}/v1/complaints/{complaint_id}/parcel"
        report = {
            "carrier": "SF Express",
            "tracking_number": "SF7777000312",
            "status": "arrived at Hangzhou hub",
            "status_at": datetime.now(UTC).isoformat(),
        }

        async def reported() -> bool:
            # 404 until complaint.received has reached notification.
            answer = await http.put(parcel_url, json=report, headers=MERCHANT.headers())
            return answer.status_code == 200

        await wait_until(reported, timeout_s=60, what="the parcel report")
        other = await http.put(parcel_url, json=report, headers=OTHER_MERCHANT.headers())
        assert other.status_code == 404

        async def updates() -> list[dict[str, Any]]:
            return [
                m
                for m in await message_log(http, flow, complaint_id)
                if m["message_type"] == "notification.progress_update"
            ]

        def mail_text(message: dict[str, Any]) -> str:
            texts = []
            for mail in mails_to(flow.smtp, made["customer"]["email"], message["delivery_key"]):
                plain = mail.get_body(("plain",))
                texts.append(plain.get_content() if plain is not None else "")
            return "\n".join(texts)

        async def told_the_tracking_number() -> bool:
            return any("SF7777000312" in mail_text(m) for m in await updates())

        await wait_until(told_the_tracking_number, timeout_s=60, what="an update with the parcel")
        delivered = {**report, "status": "signed for", "delivered": True}
        delivered["status_at"] = datetime.now(UTC).isoformat()
        answer = await http.put(parcel_url, json=delivered, headers=MERCHANT.headers())
        assert answer.status_code == 200, answer.text
        assert answer.json()["delivered"] is True
        await asyncio.sleep(1)  # an update queued before the report may still be logged
        count = len(await updates())
        await asyncio.sleep(5)  # more than two intervals (2 s here)
        assert len(await updates()) == count, "no update after delivery"
