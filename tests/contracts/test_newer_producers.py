"""An old consumer reads a newer producer's events: recorded messages under recorded/.

Each file is one Kafka message as a producer a version ahead would publish it: `topic`,
`key`, `headers` and the envelope as `value`. They carry fields this code has never heard of,
words it does not know yet in every open vocabulary (channel, contact channel, target,
category, demand type, priority, case status, notification kind), and an event type no
service handles. Readers must decode them, and the rules that meet the unknown words must fall
back or ignore them: none of this may become a dead letter.
"""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from intake_service.schemas import ComplaintCreate
from notification_service.handlers import SUBSCRIPTIONS as NOTIFICATION_SUBSCRIPTIONS
from resolution_service.handlers import SUBSCRIPTIONS as RESOLUTION_SUBSCRIPTIONS
from resolution_service.service import case_priority
from shared.events import (
    AcknowledgementRecorded,
    CaseOpened,
    ComplaintReceived,
    ComplaintTriaged,
    EventPayload,
    ProductRef,
    UnsupportedSchemaVersionError,
    decode_event,
    parse_envelope,
)
from shared.events.vocabulary import (
    Category,
    ContactChannel,
    Priority,
    known,
)
from shared.messaging.headers import event_type_from_headers
from triage_service.domain.classifier import Complaint, TriageModel, packaged_examples, train
from triage_service.domain.decision import decide
from triage_service.domain.taxonomy import load_taxonomy
from triage_service.handlers import SUBSCRIPTIONS as TRIAGE_SUBSCRIPTIONS

RECORDED = Path(__file__).parent / "recorded"
KNOWN_TYPES: dict[str, type[EventPayload]] = {
    "complaint.received.newer.json": ComplaintReceived,
    "complaint.triaged.newer.json": ComplaintTriaged,
    "case.opened.newer.json": CaseOpened,
    "acknowledgement.recorded.newer.json": AcknowledgementRecorded,
}
UNKNOWN_TYPE = "complaint.mediation_requested.newer.json"
ALL_SUBSCRIPTIONS = [TRIAGE_SUBSCRIPTIONS, RESOLUTION_SUBSCRIPTIONS, NOTIFICATION_SUBSCRIPTIONS]


@pytest.fixture(scope="module")
def model() -> TriageModel:
    """The model triage trains at start-up."""
    return train(packaged_examples())


def recorded(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((RECORDED / name).read_text(encoding="utf-8"))
    return loaded


def value_bytes(message: dict[str, Any]) -> bytes:
    return json.dumps(message["value"], ensure_ascii=False).encode()


def kafka_headers(message: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The headers as aiokafka hands them over."""
    return [(key, value.encode()) for key, value in message["headers"].items()]


def test_every_recorded_message_is_covered():
    assert {path.name for path in RECORDED.glob("*.json")} == {*KNOWN_TYPES, UNKNOWN_TYPE}


class TestDecodingNewerEvents:
    @pytest.mark.parametrize("name", sorted(KNOWN_TYPES))
    def test_an_older_reader_decodes_the_newer_event(self, name: str):
        message = recorded(name)
        envelope = decode_event(value_bytes(message))
        assert isinstance(envelope.payload, KNOWN_TYPES[name])
        assert envelope.event_type == message["headers"]["event_type"]
        assert str(envelope.complaint_id) == message["key"]

    @pytest.mark.parametrize("name", sorted(KNOWN_TYPES))
    def test_fields_it_does_not_know_are_ignored(self, name: str):
        message = recorded(name)
        envelope = decode_event(value_bytes(message))
        unknown = message["value"]["payload"].keys() - type(envelope.payload).model_fields.keys()
        assert unknown, f"{name} should carry fields from the future"
        dumped = envelope.payload.model_dump()
        assert not unknown & dumped.keys()

    def test_unknown_words_travel_as_they_were_sent(self):
        received = decode_event(value_bytes(recorded("complaint.received.newer.json"))).payload
        assert isinstance(received, ComplaintReceived)
        assert (received.channel, received.preferred_contact_channel) == ("live_stream", "wechat")
        assert (received.target, received.category_hint) == ("livestream_host", "pet_safety")
        assert [demand.type for demand in received.demands] == ["price_protection", "refund"]
        assert received.demands[0].amount == Decimal("35.50")

        case = decode_event(value_bytes(recorded("case.opened.newer.json"))).payload
        assert isinstance(case, CaseOpened)
        assert (case.priority, case.status) == ("critical", "awaiting_merchant_evidence")

        ack = decode_event(value_bytes(recorded("acknowledgement.recorded.newer.json"))).payload
        assert isinstance(ack, AcknowledgementRecorded)
        assert (ack.channel, ack.kind) == ("wechat", "progress_update")

    def test_open_codes_still_refuse_what_is_not_a_code(self):
        message = recorded("complaint.triaged.newer.json")
        for bad in ("", "Pet Safety", "pet-safety", "pet_safety\u0000", "x" * 65):
            payload = {**message["value"]["payload"], "category": bad}
            with pytest.raises(ValidationError, match="category"):
                ComplaintTriaged.model_validate(payload)


class TestUnknownEventTypes:
    def test_the_type_is_read_from_the_headers_without_parsing_the_value(self):
        message = recorded(UNKNOWN_TYPE)
        assert event_type_from_headers(kafka_headers(message)) == "complaint.mediation_requested"

    def test_no_consumer_subscribes_to_it(self):
        for subscriptions in ALL_SUBSCRIPTIONS:
            for handlers in subscriptions.values():
                assert "complaint.mediation_requested" not in handlers

    def test_its_envelope_parses_but_it_has_no_payload_class(self):
        message = recorded(UNKNOWN_TYPE)
        assert parse_envelope(value_bytes(message)).event_type == "complaint.mediation_requested"
        # Decoding it is a mistake the consumer avoids by checking the type first.
        with pytest.raises(UnsupportedSchemaVersionError):
            decode_event(value_bytes(message))

    def test_headers_without_a_type_give_none(self):
        assert event_type_from_headers([("event_id", b"x")]) is None
        assert event_type_from_headers(None) is None
        assert event_type_from_headers([("event_type", b"")]) is None


class TestConsumersFallBack:
    def received(self) -> ComplaintReceived:
        payload = decode_event(value_bytes(recorded("complaint.received.newer.json"))).payload
        assert isinstance(payload, ComplaintReceived)
        return payload

    def test_triage_decides_a_complaint_full_of_words_it_does_not_know(self, model: TriageModel):
        received = self.received()
        decision = decide(
            Complaint(
                text=received.description,
                target=received.target,
                demands=tuple(demand.type for demand in received.demands),
                channel=received.channel,
            ),
            model=model,
        )
        assert decision.team in model.taxonomy.teams
        assert decision.priority in set(Priority)

    def test_an_unknown_category_is_owned_by_intake_review(self):
        taxonomy = load_taxonomy()
        assert taxonomy.team_for("pet_safety") == taxonomy.fallback_team == "intake_review"
        assert taxonomy.team_for(Category.SAFETY) == "safety_response"

    def test_resolution_works_an_unknown_priority_as_general(self):
        triaged = decode_event(value_bytes(recorded("complaint.triaged.newer.json"))).payload
        assert isinstance(triaged, ComplaintTriaged)
        assert case_priority(triaged.priority) is Priority.GENERAL
        assert case_priority("urgent") is Priority.URGENT

    def test_notification_keeps_an_unknown_contact_channel_as_sent(self):
        channel = self.received().preferred_contact_channel
        ack = AcknowledgementRecorded.model_validate(
            {
                **recorded("acknowledgement.recorded.newer.json")["value"]["payload"],
                "channel": channel,
            }
        )
        assert ack.channel == "wechat"
        assert known(ContactChannel, channel) is None


class TestProducersRefuseReadersTolerate:
    """Text rules bind producers; an event already published is never refused for them."""

    def test_a_producer_cannot_build_a_product_name_with_control_characters(self):
        with pytest.raises(ValidationError, match="control characters"):
            ProductRef(name="kettle\x01")

    def test_a_reader_decodes_an_event_written_before_the_rule(self):
        message = recorded("complaint.received.newer.json")
        message["value"]["payload"]["product"]["name"] = "Smart\x01 pet feeder"
        message["value"]["payload"]["description"] = "written before the rule \x07"
        payload = decode_event(value_bytes(message)).payload
        assert isinstance(payload, ComplaintReceived)
        assert payload.product is not None
        assert payload.product.name == "Smart\x01 pet feeder"


class TestTheProducerOwnsItsVocabulary:
    """Open on the wire, closed at the door: intake's API accepts only the words it knows."""

    VALID: dict[str, Any] = {
        "customer": {"customer_id": "c-1", "phone": "13800138000", "preferred_channel": "sms"},
        "merchant_id": "m-1",
        "description": "kettle arrived cracked",
    }

    @pytest.mark.parametrize(
        ("override", "field"),
        [
            ({"channel": "live_stream"}, ("channel",)),
            ({"target": "livestream_host"}, ("target",)),
            ({"category_hint": "pet_safety"}, ("category_hint",)),
            ({"demands": [{"type": "price_protection"}]}, ("demands", 0, "type")),
            (
                {"customer": {"customer_id": "c-1", "preferred_channel": "wechat"}},
                ("customer", "preferred_channel"),
            ),
        ],
    )
    def test_an_unknown_word_is_refused_over_http(self, override: dict[str, Any], field):
        with pytest.raises(ValidationError) as caught:
            ComplaintCreate.model_validate({**self.VALID, **override})
        assert field in [error["loc"] for error in caught.value.errors()]

    def test_the_known_words_pass(self):
        ComplaintCreate.model_validate(
            {**self.VALID, "channel": "chat", "demands": [{"type": "refund"}]}
        )
