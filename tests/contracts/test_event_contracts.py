"""Event contracts: the committed JSON Schema snapshots are the reviewed truth.

A contract may widen (after review: regenerate the snapshot), never narrow.
"""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.events import (
    CASE_CHANGES,
    PAYLOAD_CLASSES,
    AcknowledgementRecorded,
    CaseOpened,
    ComplaintEscalated,
    ComplaintInfoRequested,
    ComplaintInfoSupplied,
    ComplaintLinkedDuplicate,
    ComplaintReceived,
    ComplaintRejected,
    ComplaintRetriaged,
    ComplaintSlaBreached,
    ComplaintSlaWarning,
    ComplaintTriaged,
    ComplaintWithdrawn,
    CustomerErased,
    Demand,
    EventEnvelope,
    EventPayload,
    MissingItem,
    NotificationFailed,
    NotificationSent,
    OrderItem,
    OrderRef,
    RemedyLine,
    SurveyCompleted,
    decode_event,
    new_event,
)
from shared.events.snapshots import (
    SNAPSHOT_DIR,
    committed_schema,
    compare,
    current_schemas,
    narrowing,
    render,
    snapshot_name,
)
from shared.events.vocabulary import (
    CaseStatus,
    Category,
    Channel,
    ComplaintTarget,
    ContactChannel,
    DemandType,
    Priority,
)

NOW = datetime(2024, 5, 10, 9, 30, tzinfo=UTC)

SAMPLES: dict[type[EventPayload], EventPayload] = {
    ComplaintReceived: ComplaintReceived(
        complaint_number="202405-000001",
        customer_id="cust-1",
        sealed_contact="c2VhbGVk",
        preferred_contact_channel=ContactChannel.SMS,
        order_number="2024042800123",
        merchant_id="m-1",
        channel=Channel.CHAT,
        target=ComplaintTarget.PRODUCT,
        category_hint=Category.PRODUCT_QUALITY,
        description="item A arrived broken",
        demands=[
            Demand(type=DemandType.REFUND),
            Demand(type=DemandType.COMPENSATION, amount=Decimal("100")),
        ],
        received_at=NOW,
        order=OrderRef(
            number="2024042800123",
            placed_at=NOW,
            delivered_at=NOW,
            amount=Decimal("299.00"),
            items=[OrderItem(sku="A-1", name="电水壶", quantity=1, unit_price=Decimal("299.00"))],
        ),
        occurred_at=NOW,
        after_sales_reason="damaged",
        customer_flags=["abuse_suspected"],
    ),
    ComplaintInfoRequested: ComplaintInfoRequested(
        complaint_number="202405-000002",
        customer_id="cust-1",
        merchant_id="m-1",
        channel=Channel.APP,
        sealed_contact="c2VhbGVk",
        preferred_contact_channel=ContactChannel.APP_PUSH,
        missing=[MissingItem(field="evidence", reason="a photo of the damage")],
        respond_by=NOW,
        requested_at=NOW,
    ),
    ComplaintInfoSupplied: ComplaintInfoSupplied(
        complaint_number="202405-000002",
        customer_id="cust-1",
        supplied=["evidence_ids"],
        supplied_at=NOW,
    ),
    ComplaintRejected: ComplaintRejected(
        complaint_number="202405-000003",
        customer_id="cust-1",
        merchant_id="m-1",
        channel=Channel.WEB,
        sealed_contact="c2VhbGVk",
        preferred_contact_channel=ContactChannel.EMAIL,
        reason_code="after_sales_window_expired",
        reason="return requested 40 days after delivery; the window is 15 days",
        alternative="the manufacturer's warranty service, or 12315",
        rejected_at=NOW,
    ),
    ComplaintWithdrawn: ComplaintWithdrawn(
        complaint_number="202405-000001",
        customer_id="cust-1",
        merchant_id="m-1",
        reason="solved with the shop directly",
        withdrawn_at=NOW,
    ),
    ComplaintLinkedDuplicate: ComplaintLinkedDuplicate(
        complaint_number="202405-000001",
        customer_id="cust-1",
        merchant_id="m-1",
        order_number="2024042800123",
        target=ComplaintTarget.PRODUCT,
        description="still broken, any news?",
        submitted_at=NOW,
    ),
    CustomerErased: CustomerErased(
        complaint_number="202405-000001", customer_id="cust-1", erased_at=NOW
    ),
    ComplaintTriaged: ComplaintTriaged(
        complaint_number="202405-000001",
        merchant_id="m-1",
        category=Category.PRODUCT_QUALITY,
        priority=Priority.GENERAL,
        team="merchant_management",
        provisional=True,
        first_response_due_at=NOW,
        triaged_at=NOW,
        subcategory="damaged",
        confidence=0.93,
        manual_review=False,
        responsibility="merchant",
        reasons=["subcategory damaged at 0.93 from keyword:damaged", "default for damaged"],
        resolution_due_at=NOW,
        group_key="sku:A-1",
    ),
    ComplaintRetriaged: ComplaintRetriaged(
        complaint_number="202405-000001",
        merchant_id="m-1",
        category=Category.LOGISTICS,
        subcategory="lost",
        priority=Priority.IMPORTANT,
        team="logistics",
        previous_category=Category.PRODUCT_QUALITY,
        previous_subcategory="damaged",
        previous_priority=Priority.GENERAL,
        previous_team="merchant_management",
        cause="manual",
        reason="the carrier confirmed the parcel is lost",
        retriaged_by="agent:alice",
        first_response_due_at=NOW,
        resolution_due_at=NOW,
        retriaged_at=NOW,
    ),
    ComplaintSlaWarning: ComplaintSlaWarning(
        complaint_number="202405-000001",
        merchant_id="m-1",
        team="logistics",
        priority=Priority.URGENT,
        clock="first_response",
        warn_at=NOW,
        due_at=NOW,
        warned_at=NOW,
    ),
    ComplaintSlaBreached: ComplaintSlaBreached(
        complaint_number="202405-000001",
        merchant_id="m-1",
        team="logistics",
        priority=Priority.URGENT,
        clock="first_response",
        due_at=NOW,
        breached_at=NOW,
    ),
    ComplaintEscalated: ComplaintEscalated(
        complaint_number="202405-000001",
        merchant_id="m-1",
        team="logistics",
        priority=Priority.URGENT,
        level=2,
        escalated_to="supervisor",
        reason="first_response deadline passed: step 2 of the escalation chain",
        escalated_at=NOW,
    ),
    CaseOpened: CaseOpened(
        case_id=uuid.uuid4(),
        complaint_number="202405-000001",
        merchant_id="m-1",
        priority=Priority.URGENT,
        status=CaseStatus.PROCESSING,
        first_response_due_at=NOW,
        opened_at=NOW,
        state="open",
        customer_visible_state=CaseStatus.PROCESSING,
        team="merchant_management",
    ),
    AcknowledgementRecorded: AcknowledgementRecorded(
        notification_id=uuid.uuid4(),
        complaint_number="202405-000001",
        channel=ContactChannel.SMS,
        respond_by=NOW,
        recorded_at=NOW,
    ),
    NotificationSent: NotificationSent(
        message_id=uuid.uuid4(),
        delivery_key="msg_3f1d9a526c2e4f0b9a570d1c2b7e8a11",
        complaint_number="202405-000001",
        message_type="complaint.received",
        audience="customer",
        channel="email",
        attempts=1,
        provider_reference="<msg_3f1d9a526c2e4f0b9a570d1c2b7e8a11@example.com>",
        sent_at=NOW,
    ),
    NotificationFailed: NotificationFailed(
        message_id=uuid.uuid4(),
        delivery_key="msg_3f1d9a526c2e4f0b9a570d1c2b7e8a11",
        complaint_number="202405-000001",
        message_type="case.opened",
        audience="merchant",
        channel="webhook",
        status="dead_letter",
        reason="gave up after 7 attempts: the schedule is spent",
        attempts=7,
        failed_at=NOW,
    ),
    SurveyCompleted: SurveyCompleted(
        case_id=uuid.uuid4(),
        complaint_number="202405-000001",
        merchant_id="m-1",
        score=4,
        reasons=["fast_response", "merchant_cooperative"],
        subjects=["merchant", "platform"],
        has_comment=True,
        answered_at=NOW,
    ),
}


# Every case event shares one shape (CaseChange): one sample each, with the step's facts.
CASE_ID = uuid.uuid4()
for _cls in CASE_CHANGES:
    SAMPLES[_cls] = _cls(
        case_id=CASE_ID,
        complaint_number="202405-000001",
        merchant_id="m-1",
        team="merchant_management",
        state="awaiting_customer",
        previous_state="remedy_proposed",
        customer_visible_state=CaseStatus.AWAITING_CUSTOMER_CONFIRMATION,
        trigger="offer_to_customer",
        actor="agent:alice",
        at=NOW,
        assignee_id="agent:alice",
        responsibility="merchant",
        remedies=[
            RemedyLine(
                kind="refund",
                amount=Decimal("299.00"),
                paid_by="merchant",
                description="full refund of 299.00 CNY to the original payment method",
            ),
            RemedyLine(
                kind="coupon",
                amount=Decimal("50.00"),
                paid_by="merchant",
                description="no-threshold coupon of 50.00 CNY, valid 30 days",
            ),
        ],
        offer_total=Decimal("349.00"),
        policy_version="compensation-v1",
        rules_applied=["quality.remedy", "quality.coupon"],
        offer_hash="0" * 64,
        respond_by=NOW,
        requested_at=NOW,
        questions=["Your outbound QC record for this order?"],
    )


def test_every_event_has_a_sample():
    assert set(SAMPLES) == set(PAYLOAD_CLASSES)


@pytest.mark.parametrize("name", sorted(current_schemas()))
def test_no_contract_narrows_its_committed_snapshot(name: str):
    committed = committed_schema(name)
    if committed is None:
        # A new event type has no earlier contract to narrow. Its snapshot must still be
        # written and committed: test_schema_matches_its_committed_snapshot demands it.
        return
    refused = narrowing(compare(committed, current_schemas()[name]))
    assert not refused, (
        f"{name} would refuse events its committed contract accepts; consumers reading events "
        "already published would dead-letter them. Make a new payload class and topic version "
        "instead:\n  " + "\n  ".join(str(change) for change in refused)
    )


@pytest.mark.parametrize("name", sorted(current_schemas()))
def test_schema_matches_its_committed_snapshot(name: str):
    committed = committed_schema(name)
    assert committed is not None, (
        f"no snapshot for {name}: run `python -m shared.events.snapshots` and review"
    )
    # Any difference, even a widening one, is reviewed: regenerating the snapshot is the review.
    changes = compare(committed, current_schemas()[name])
    committed_text = (SNAPSHOT_DIR / name).read_text(encoding="utf-8")
    assert render(current_schemas()[name]) == committed_text, (
        f"{name} changed without its snapshot; review these changes and, if they are widening, "
        "regenerate with `python -m shared.events.snapshots`:\n  "
        + "\n  ".join(str(change) for change in changes)
    )


def test_no_snapshot_without_an_event_class():
    committed = {path.name for path in SNAPSHOT_DIR.glob("*.json")}
    assert committed == set(current_schemas()), "an event was removed or renamed"


@pytest.mark.parametrize("cls", PAYLOAD_CLASSES, ids=lambda c: c.event_type)
def test_event_round_trips_through_json(cls: type[EventPayload]):
    envelope = new_event(
        SAMPLES[cls], producer="tests", complaint_id=uuid.uuid4(), correlation_id="c-1"
    )
    decoded = decode_event(envelope.model_dump_json().encode())
    assert decoded == envelope
    assert decoded.event_type == cls.event_type
    assert decoded.schema_version == cls.schema_version


@pytest.mark.parametrize("cls", PAYLOAD_CLASSES, ids=lambda c: c.event_type)
def test_readers_ignore_unknown_fields(cls: type[EventPayload]):
    envelope = new_event(
        SAMPLES[cls], producer="tests", complaint_id=uuid.uuid4(), correlation_id="c-1"
    )
    data = json.loads(envelope.model_dump_json())
    data["added_later"] = 1
    data["payload"]["also_added_later"] = {"x": 1}
    assert decode_event(json.dumps(data).encode()) == envelope


# Named by the tracker (issue 9) as a noun: the warning that was given. Kept as named so that
# consumers and dashboards use the words the issue used.
NOUN_EVENT_TYPES = frozenset({"complaint.sla_warning"})


def test_event_names_are_past_tense_and_dotted():
    for cls in PAYLOAD_CLASSES:
        if cls.event_type in NOUN_EVENT_TYPES:
            continue
        noun, _, verb = cls.event_type.partition(".")
        assert noun, cls.event_type
        # complaint.info_requested, complaint.linked_duplicate, complaint.withdrawn: the verb
        # part holds a past participle.
        # case.decision_upheld: "held" is the irregular participle of "hold".
        participles = ("ed", "wn", "en", "sent", "held")
        assert any(word.endswith(participles) for word in verb.split("_")), cls.event_type
        assert snapshot_name(cls.event_type, cls.schema_version).endswith(
            f".v{cls.schema_version}.json"
        )


def test_resolution_events_carry_no_customer_contact():
    for cls in PAYLOAD_CLASSES:
        if cls.topic.value.startswith("resolution."):
            fields = set(cls.model_fields)
            assert not fields & {"contact", "sealed_contact", "phone", "email", "name", "address"}
            assert "merchant_id" in fields, "merchant systems filter resolution events by merchant"


def test_envelope_requires_aware_timestamps():
    envelope = new_event(
        SAMPLES[CaseOpened], producer="t", complaint_id=uuid.uuid4(), correlation_id="c"
    )
    data = json.loads(envelope.model_dump_json())
    data["occurred_at"] = "2024-05-10T09:30:00"
    with pytest.raises(ValueError, match="timezone"):
        EventEnvelope[CaseOpened].model_validate(data)
