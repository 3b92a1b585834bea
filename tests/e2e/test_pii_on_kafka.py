"""Contact data never crosses Kafka in clear: every byte of every topic of the run is scanned.

Complaints with distinctive names, phones and emails go through the intake API; once each has
reached every topic (received, triaged, case opened, acknowledged), the raw keys, values and
headers of every message on all the run's topics, dead-letter twins included, are searched for
those values as written, JSON-escaped and as UTF-8 bytes. The sealed contact must name the
current key and open to exactly what was submitted.
"""

import json
import uuid
from collections.abc import Iterable

import httpx
import pytest

from shared.events import ComplaintReceived, Topic
from shared.events.topics import all_topic_names, qualified_topic
from shared.pii import DEFAULT_PII_KEY_ID, DEV_ONLY_PII_KEY, PiiKeyring, token_key_id, unseal
from tests.support.complaints import complaint_body, post_complaint
from tests.support.kafka import Message, read_all
from tests.support.platform import Platform
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

DEADLINE_S = 30
COMPLAINTS = 3
# The platform under test runs with the default keyring: the development key, id k1.
PLATFORM_KEYRING = PiiKeyring.single(DEV_ONLY_PII_KEY)


def distinctive_contact(marker: str, n: int) -> dict[str, str]:
    """Values that appear nowhere else: a hit can only be this test's contact data."""
    return {
        "name": f"卡夫卡隐私{marker}{n}",
        "phone": f"139{int(marker, 16) % 10_000:04d}{n:04d}",
        "email": f"kafka.pii.{marker}.{n}@example.test",
    }


def byte_forms(value: str) -> set[bytes]:
    """How a value may sit in a message: UTF-8 as is, or JSON-escaped (\\u5361...)."""
    escaped = json.dumps(value)[1:-1]
    return {value.encode(), escaped.encode(), escaped.upper().encode()}


def raw_parts(message: Message) -> Iterable[tuple[str, bytes]]:
    """Every byte string a message carries: key, value and each header."""
    yield "key", message.key or b""
    yield "value", message.value or b""
    for name, value in message.headers:
        yield f"header {name}", value


async def messages_of_the_run(platform: Platform) -> list[Message]:
    """Every message on every topic of this run, dead-letter twins included."""
    config = platform.stack.config
    messages: list[Message] = []
    for topic in all_topic_names(config.topic_prefix):
        messages += await read_all(config.kafka_bootstrap, topic)
    return messages


async def on_every_topic(platform: Platform, complaint_ids: set[str]) -> list[Message] | None:
    """All the run's messages, once each complaint has an event on each of the four topics."""
    messages = await messages_of_the_run(platform)
    prefix = platform.stack.config.topic_prefix
    for topic in Topic:
        seen = {
            m.header("complaint_id") for m in messages if m.topic == qualified_topic(topic, prefix)
        }
        if not complaint_ids <= seen:
            return None
    return messages


async def test_no_contact_value_crosses_any_topic_in_clear(
    platform: Platform, http: httpx.AsyncClient
):
    marker = uuid.uuid4().hex[:8]
    contacts: dict[str, dict[str, str]] = {}
    for n in range(COMPLAINTS):
        contact = distinctive_contact(marker, n)
        body = complaint_body(n)
        body["customer"] = {
            **body["customer"],
            **contact,
            "customer_id": f"cust-kafka-{marker}-{n}",
        }
        response = await post_complaint(http, platform.url("intake"), body)
        assert response.status_code == 201, response.text
        contacts[response.json()["complaint_id"]] = contact

    messages = await wait_until(
        lambda: on_every_topic(platform, set(contacts)),
        timeout_s=DEADLINE_S,
        what="every complaint on all four topics",
    )

    # A hit names the field and complaint, never the value: this output is scanned for PII too.
    forms = {
        form: f"{field} of complaint {complaint_id}"
        for complaint_id, contact in contacts.items()
        for field, value in contact.items()
        for form in byte_forms(value)
    }
    hits = sorted(
        f"{forms[form]} in {where} of {m.topic}@{m.partition}:{m.offset}"
        for m in messages
        for where, raw in raw_parts(m)
        for form in forms
        if form in raw
    )
    assert not hits, "contact data crossed Kafka in clear:\n  " + "\n  ".join(hits)

    intake_topic = qualified_topic(Topic.INTAKE_COMPLAINT, platform.stack.config.topic_prefix)
    received = [
        json.loads(m.value or b"{}")
        for m in messages
        if m.topic == intake_topic
        and m.header("event_type") == ComplaintReceived.event_type
        and m.header("complaint_id") in contacts
    ]
    assert len(received) == COMPLAINTS
    for envelope in received:
        token = envelope["payload"]["sealed_contact"]
        assert token_key_id(token) == DEFAULT_PII_KEY_ID, "sealed with the current key"
        opened = unseal(token, PLATFORM_KEYRING)
        assert {k: opened[k] for k in ("name", "phone", "email")} == contacts[
            envelope["complaint_id"]
        ]
