"""A service that stores customer data erases it on customer.erased: checked on its tables.

Intake owns the customer and erases at the source; every consumer that keeps a column of
customer data must handle `customer.erased`. Resolution keeps the customer's id for scope (the
storefront acts for its own customer) and in the proof of consent, and pseudonymises both.
"""

from collections.abc import Mapping

import pytest
from sqlalchemy import MetaData

from notification_service.handlers import SUBSCRIPTIONS as NOTIFICATION_SUBSCRIPTIONS
from notification_service.models import metadata as notification_metadata
from resolution_service.handlers import SUBSCRIPTIONS as RESOLUTION_SUBSCRIPTIONS
from resolution_service.models import metadata as resolution_metadata
from shared.events import CustomerErased
from shared.messaging import Handler
from triage_service.handlers import SUBSCRIPTIONS as TRIAGE_SUBSCRIPTIONS
from triage_service.models import metadata as triage_metadata

# Column names that hold a customer's identity, contact or own words.
CUSTOMER_DATA_COLUMNS = frozenset(
    {"customer_id", "sealed_contact", "contact", "phone", "email", "address", "description"}
)
# Principals of the platform (API keys, staff users), not customers.
ACCESS_TABLES = frozenset({"api_keys", "users"})

CONSUMERS: dict[str, tuple[MetaData, Mapping[object, Mapping[str, Handler]]]] = {
    "triage": (triage_metadata, TRIAGE_SUBSCRIPTIONS),
    "resolution": (resolution_metadata, RESOLUTION_SUBSCRIPTIONS),
    "notification": (notification_metadata, NOTIFICATION_SUBSCRIPTIONS),
}


def customer_data_columns(metadata: MetaData) -> list[str]:
    return sorted(
        f"{table.name}.{column.name}"
        for table in metadata.tables.values()
        if table.name not in ACCESS_TABLES
        for column in table.columns
        if column.name in CUSTOMER_DATA_COLUMNS
    )


@pytest.mark.parametrize("service", sorted(CONSUMERS))
def test_a_service_that_stores_customer_data_handles_customer_erased(service: str):
    metadata, subscriptions = CONSUMERS[service]
    stored = customer_data_columns(metadata)
    handled = {event_type for handlers in subscriptions.values() for event_type in handlers}
    if stored:
        assert CustomerErased.event_type in handled, (
            f"{service} stores {stored} but does not handle {CustomerErased.event_type}"
        )


# Every column of customer data a consumer stores, each erased or pseudonymised by its
# customer.erased handler. A new one fails the test below: make the erasure cover it, then list it.
ERASED_COLUMNS = {
    "triage": ["corrections.description", "triages.customer_id", "triages.description"],
    "resolution": ["complaint_facts.customer_id", "consents.customer_id"],
    # Preferences are deleted with the customer; recipients keep a pseudonym and no contact.
    "notification": [
        "customer_preferences.customer_id",
        "recipients.customer_id",
        "recipients.sealed_contact",
    ],
}


@pytest.mark.parametrize("service", sorted(CONSUMERS))
def test_every_column_of_customer_data_is_one_the_erasure_covers(service: str):
    metadata, _ = CONSUMERS[service]
    assert customer_data_columns(metadata) == ERASED_COLUMNS[service], (
        f"{service}'s columns of customer data changed: make its customer.erased handler erase "
        "or pseudonymise each new one, then list it in ERASED_COLUMNS"
    )
