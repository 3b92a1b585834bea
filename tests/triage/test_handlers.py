"""Triage's subscriptions: every case event that carries the customer-visible state moves the
SLA clocks, so resolution can add such events without triage changing."""

from shared.events import PAYLOAD_CLASSES, Topic
from triage_service.handlers import SUBSCRIPTIONS, on_case_state


def test_every_resolution_event_carrying_the_case_state_is_handled_by_the_clocks():
    carrying = {
        cls.event_type
        for cls in PAYLOAD_CLASSES
        if cls.topic is Topic.RESOLUTION_CASE
        and {"customer_visible_state", "status"} & set(cls.model_fields)
    }
    handled = SUBSCRIPTIONS[Topic.RESOLUTION_CASE]
    assert "case.opened" in carrying
    assert set(handled) == carrying
    assert set(handled.values()) == {on_case_state}
