"""Triage's subscriptions: every case event that carries the customer-visible state moves the
SLA clocks, so resolution can add such events without triage changing."""

from shared.events import PAYLOAD_CLASSES, Topic
from triage_service.handlers import (
    FIRST_RESPONSE_EVENT_TYPES,
    SUBSCRIPTIONS,
    on_case_event,
)


def test_every_resolution_event_carrying_the_case_state_is_handled_by_the_clocks():
    carrying = {
        cls.event_type
        for cls in PAYLOAD_CLASSES
        if cls.topic is Topic.RESOLUTION_CASE
        and {"customer_visible_state", "status"} & set(cls.model_fields)
    }
    first_responses = {
        cls.event_type
        for cls in PAYLOAD_CLASSES
        if cls.topic is Topic.RESOLUTION_CASE and cls.event_type in FIRST_RESPONSE_EVENT_TYPES
    }
    handled = SUBSCRIPTIONS[Topic.RESOLUTION_CASE]
    assert "case.opened" in carrying
    assert set(handled) == carrying | first_responses
    assert set(handled.values()) == {on_case_event}


def test_opening_or_assigning_a_case_is_not_a_first_response():
    assert not {"case.opened", "case.assigned"} & FIRST_RESPONSE_EVENT_TYPES
