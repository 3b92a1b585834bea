"""Who hears what: the packaged rules, and what validation refuses."""

import copy
import json
import uuid
from importlib import resources
from typing import Any

import pytest

from notification_service.domain.routing import (
    Audience,
    DeliveryChannel,
    RoutingRulesError,
    delivery_key,
    load_rules,
    rules_from_dict,
    rules_from_json,
)

CUSTOMER_CHANNELS = (DeliveryChannel.SMS, DeliveryChannel.APP_PUSH, DeliveryChannel.EMAIL)

# message type -> (recipients, essential)
EXPECTED = {
    "complaint.received": ({"customer", "merchant"}, True),
    "complaint.info_requested": ({"customer"}, True),
    "complaint.rejected": ({"customer"}, True),
    "complaint.withdrawn": ({"customer", "merchant"}, True),
    "complaint.linked_duplicate": ({"customer"}, True),
    "complaint.sla_warning": ({"assigned_agent", "supervisor"}, True),
    "complaint.sla_breached": ({"assigned_agent", "supervisor"}, True),
    "case.opened": ({"customer", "merchant"}, True),
    "case.assigned": ({"assigned_agent"}, True),
    "case.merchant_verification_requested": ({"merchant"}, True),
    "case.remedy_offered": ({"customer"}, True),
    "case.resolved": ({"customer", "merchant"}, True),
    "case.rejected": ({"customer"}, True),
    "notification.progress_update": ({"customer"}, False),
    "notification.survey_invitation": ({"customer"}, True),
    "notification.survey_reminder": ({"customer"}, True),
}


def packaged_data() -> dict[str, Any]:
    text = resources.files("notification_service").joinpath("rules.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


class TestPackagedRules:
    def test_routes_exactly_the_agreed_messages_to_the_agreed_audiences(self):
        rules = load_rules()
        found = {}
        for message_type in rules.message_types:
            route = rules.route(message_type)
            assert route is not None
            found[message_type] = (
                {recipient.audience.value for recipient in route.recipients},
                route.essential,
            )
        assert found == EXPECTED

    def test_ignores_event_types_it_does_not_know(self):
        rules = load_rules()
        assert rules.route("customer.erased") is None
        assert rules.route("complaint.info_supplied") is None
        assert rules.route("case.something_new_next_year") is None

    def test_reaches_customers_on_their_channels_in_their_own_order(self):
        route = load_rules().route("complaint.received")
        assert route is not None
        customer = next(r for r in route.recipients if r.audience is Audience.CUSTOMER)
        assert customer.channels == CUSTOMER_CHANNELS
        assert customer.follows_customer_preference

    def test_reaches_merchants_by_webhook_and_staff_by_email(self):
        rules = load_rules()
        for message_type in rules.message_types:
            route = rules.route(message_type)
            assert route is not None
            for recipient in route.recipients:
                if recipient.audience is Audience.MERCHANT:
                    assert recipient.channels == (DeliveryChannel.WEBHOOK,)
                elif recipient.audience is not Audience.CUSTOMER:
                    assert recipient.channels == (DeliveryChannel.EMAIL,)
                    assert not recipient.follows_customer_preference

    def test_sla_warnings_and_breaches_reach_the_supervisor(self):
        rules = load_rules()
        for message_type in ("complaint.sla_warning", "complaint.sla_breached"):
            route = rules.route(message_type)
            assert route is not None
            assert Audience.SUPERVISOR in {r.audience for r in route.recipients}

    def test_triage_is_not_announced_apart_from_the_case_that_follows_it(self):
        # case.opened says the same seconds later: the customer hears it once.
        assert load_rules().route("complaint.triaged", {"priority": "urgent"}) is None

    def test_a_breach_is_urgent_whatever_the_facts(self):
        route = load_rules().route("complaint.sla_breached")
        assert route is not None
        assert route.urgent

    @pytest.mark.parametrize(
        ("facts", "urgent"),
        [
            ({"priority": "urgent"}, True),
            ({"priority": "important"}, False),
            ({}, False),
            ({"priority": None}, False),
        ],
    )
    def test_the_case_opened_message_is_urgent_for_urgent_cases(self, facts, urgent):
        route = load_rules().route("case.opened", facts)
        assert route is not None
        assert route.urgent is urgent

    def test_merchants_never_get_contact_data_or_the_customers_words(self):
        route = load_rules().route("complaint.received")
        assert route is not None
        payload = {
            "complaint_number": "202405-000123",
            "customer_id": "c-1",
            "sealed_contact": "k1.abc",
            "description": "my phone is 13800138000",
            "order_number": "O1",
            "received_at": "2024-05-03T02:00:00Z",
        }
        view = route.merchant_view(payload)
        assert view == {
            "complaint_number": "202405-000123",
            "order_number": "O1",
            "received_at": "2024-05-03T02:00:00Z",
        }

    def test_is_versioned_and_explains_each_message(self):
        rules = load_rules()
        assert rules.version >= 1
        assert all(message.about for message in rules.messages.values())


class TestValidation:
    def broken(self, change) -> str:
        data = copy.deepcopy(packaged_data())
        change(data)
        with pytest.raises(RoutingRulesError) as raised:
            rules_from_dict(data)
        return str(raised.value)

    def test_refuses_an_audience_the_service_cannot_address(self):
        def change(data):
            data["messages"]["case.opened"]["recipients"].append("warehouse")

        assert "warehouse" in self.broken(change)

    def test_refuses_a_channel_it_cannot_send_on(self):
        def change(data):
            data["audiences"]["customer"]["channels"].append("carrier_pigeon")

        assert "carrier_pigeon" in self.broken(change)

    def test_refuses_a_missing_audience(self):
        assert "supervisor" in self.broken(lambda data: data["audiences"].pop("supervisor"))

    def test_refuses_a_merchant_message_without_its_fields(self):
        def change(data):
            data["messages"]["case.resolved"].pop("merchant_fields")

        assert "merchant_fields" in self.broken(change)

    def test_refuses_contact_data_for_merchants(self):
        def change(data):
            data["messages"]["complaint.received"]["merchant_fields"].append("sealed_contact")

        assert "sealed_contact" in self.broken(change)

    def test_refuses_merchant_fields_without_the_merchant(self):
        def change(data):
            data["messages"]["complaint.rejected"]["merchant_fields"] = ["complaint_number"]

        assert "merchant is not a recipient" in self.broken(change)

    def test_refuses_a_customer_and_staff_sharing_one_template(self):
        def change(data):
            data["messages"]["case.opened"]["recipients"].append("assigned_agent")

        message = self.broken(change)
        assert "case.opened" in message
        assert "email" in message

    def test_refuses_webhooks_for_anyone_but_merchants(self):
        def change(data):
            data["audiences"]["supervisor"]["channels"] = ["webhook"]

        assert "webhook" in self.broken(change)

    def test_refuses_a_repeated_recipient(self):
        def change(data):
            data["messages"]["complaint.rejected"]["recipients"] = ["customer", "customer"]

        assert "duplicate recipient" in self.broken(change)

    def test_refuses_a_message_type_that_is_not_dotted(self):
        def change(data):
            data["messages"]["ComplaintReceived"] = data["messages"]["complaint.rejected"]

        assert "ComplaintReceived" in self.broken(change)

    def test_refuses_unknown_importance(self):
        def change(data):
            data["messages"]["complaint.rejected"]["importance"] = "nice_to_have"

        assert "importance" in self.broken(change)

    def test_refuses_text_that_is_not_json(self):
        with pytest.raises(RoutingRulesError, match="not valid JSON"):
            rules_from_json("{")


class TestDeliveryKey:
    def test_is_the_same_for_the_same_event_recipient_and_channel(self):
        event_id = uuid.uuid4()
        first = delivery_key(event_id, "customer", "c-1", "sms")
        assert first == delivery_key(event_id, "customer", "c-1", "sms")
        assert first.startswith("msg_")

    def test_differs_for_another_channel_recipient_or_event(self):
        event_id = uuid.uuid4()
        keys = {
            delivery_key(event_id, "customer", "c-1", "sms"),
            delivery_key(event_id, "customer", "c-1", "email"),
            delivery_key(event_id, "supervisor", "s-1", "email"),
            delivery_key(event_id, "supervisor", "s-2", "email"),
            delivery_key(uuid.uuid4(), "customer", "c-1", "sms"),
        }
        assert len(keys) == 5
