"""Tables of the notification schema."""

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.auth.tables import access_tables
from shared.db import make_metadata
from shared.messaging import Outbox, inbox_table, outbox_table
from shared.timers import timers_table

SCHEMA = "notification"
metadata = make_metadata(SCHEMA)

# Who to tell, and how; the contact stays sealed at rest and is opened only to deliver.
recipients = Table(
    "recipients",
    metadata,
    Column("complaint_id", Uuid, primary_key=True),
    Column("complaint_number", Text, nullable=False),
    # Once the customer is erased: a pseudonym (shared.pii.customer_pseudonym) and no contact.
    Column("customer_id", Text, nullable=False),
    Column("sealed_contact", Text, nullable=True),
    Column("preferred_channel", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # Who may read it: the storefront that posted the complaint; the merchant it concerns.
    Column("storefront_id", Text, nullable=True),
    Column("merchant_id", Text, nullable=True),
    # Which channels the contact has an address for (sms, email, app_push): no address itself,
    # so planning a message never opens the contact.
    Column("reachable_channels", ARRAY(Text), nullable=True),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("complaint_id", Uuid, nullable=False),
    Column("complaint_number", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("channel", Text, nullable=True),
    Column("status", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("respond_by", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # One acknowledgement per complaint: a duplicate that slipped past the inbox fails loudly.
    UniqueConstraint("complaint_id", "kind"),
    Index("ix_notifications_status", "status"),
)

# Complaints whose customer was erased: a later or replayed event must not bring the contact back.
erasures = Table(
    "erasures",
    metadata,
    Column("complaint_id", Uuid, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# The delivery log: one row per message (event, recipient, channel), unique by its key. The row
# is stored with the event that causes it; a durable timer sends it. `context` holds the
# template's values (never contact data); `subject` and `body` are what was sent, redacted.
messages = Table(
    "messages",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("delivery_key", Text, nullable=False, unique=True),
    Column("event_id", Uuid, nullable=False),
    Column("complaint_id", Uuid, nullable=False),
    Column("complaint_number", Text, nullable=False),
    Column("correlation_id", Text, nullable=False),
    Column("message_type", Text, nullable=False),
    Column("audience", Text, nullable=False),
    # The customer id, the merchant's endpoint id, or the staff member's settings key.
    Column("recipient_id", Text, nullable=False),
    # Null while a customer message waits for the contact (case.opened before complaint.received).
    Column("channel", Text, nullable=True),
    Column("essential", Boolean, nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Column("context", JSONB, nullable=False),
    Column("subject", Text, nullable=True),
    Column("body", Text, nullable=True),
    Column("template", Text, nullable=True),
    Column("template_version", Integer, nullable=True),
    Column("locale", Text, nullable=True),
    Column("attempts", Integer, nullable=False),
    # Attempts made before the last replay of a dead letter: the retry schedule starts afresh.
    Column("retry_base", Integer, nullable=False, server_default=text("0")),
    Column("provider_reference", Text, nullable=True),
    Column("provider_response", Text, nullable=True),
    Column("send_at", DateTime(timezone=True), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_messages_complaint_id", "complaint_id"),
    Index("ix_messages_status", "status"),
)

# Every attempt of a message, with the provider's answer (redacted).
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("message_id", Uuid, ForeignKey(messages.c.id, ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("status", Text, nullable=False),
    Column("retryable", Boolean, nullable=False),
    Column("provider_reference", Text, nullable=True),
    Column("provider_response", Text, nullable=False),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
)

# How each customer wants to be told (domain/preferences.CustomerPreferences as JSON). Keyed by
# the customer: deleted when the customer is erased.
customer_preferences = Table(
    "customer_preferences",
    metadata,
    Column("customer_id", Text, primary_key=True),
    # The storefront that set them (null when an admin did): who may read and change them.
    Column("storefront_id", Text, nullable=True),
    Column("preferences", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The case resolution opened for each complaint (case.opened): what a survey is about.
cases = Table(
    "cases",
    metadata,
    Column("complaint_id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False, unique=True),
    Column("complaint_number", Text, nullable=False),
    Column("merchant_id", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    # The agent the case is assigned to now (case.assigned): whom its SLA alerts reach.
    Column("assignee_id", Text, nullable=True),
)

# The staff directory: a staff member's own address (sealed), keyed by their principal id
# (`agent:alice`). Without an entry, staff messages go to the team's address from the settings.
staff_contacts = Table(
    "staff_contacts",
    metadata,
    Column("staff_id", Text, primary_key=True),
    Column("sealed_email", Text, nullable=False),
    Column("updated_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One satisfaction survey per case: invited on a timer, reminded once, answered once.
surveys = Table(
    "surveys",
    metadata,
    Column("case_id", Uuid, primary_key=True),
    Column("complaint_id", Uuid, nullable=False),
    Column("complaint_number", Text, nullable=False),
    Column("merchant_id", Text, nullable=False),
    # Who asked for it (an admin today; resolution's case.resolved once it is published).
    Column("requested_by", Text, nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=False),
    Column("token", Text, nullable=True),
    Column("invited_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("reminded_at", DateTime(timezone=True), nullable=True),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Column("score", Integer, nullable=True),
    Column("reasons", ARRAY(Text), nullable=True),
    Column("subjects", ARRAY(Text), nullable=True),
    # The customer's own words: erased with the customer.
    Column("comment", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_surveys_merchant_id", "merchant_id"),
    Index("ix_surveys_complaint_id", "complaint_id"),
)

# Progress updates every interval while a complaint of a configured category is open.
progress_updates = Table(
    "progress_updates",
    metadata,
    Column("complaint_id", Uuid, primary_key=True),
    Column("complaint_number", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("sent", Integer, nullable=False),
    # Set when the case is resolved, closed, rejected or withdrawn, or the customer erased.
    Column("stopped_at", DateTime(timezone=True), nullable=True),
    Column("stop_reason", Text, nullable=True),
)

# The parcel of a complaint (a delayed delivery) as its merchant or carrier last reported it:
# what progress updates say. Only a report newer than the stored one replaces it.
parcels = Table(
    "parcels",
    metadata,
    Column("complaint_id", Uuid, primary_key=True),
    Column("carrier", Text, nullable=False),
    Column("tracking_number", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_at", DateTime(timezone=True), nullable=False),
    Column("expected_delivery_at", DateTime(timezone=True), nullable=True),
    Column("delivered", Boolean, nullable=False),
    Column("reported_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Merchants' webhook endpoints: the secret is sealed at rest and shown once, when made.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("sealed_secret", Text, nullable=False),
    Column("label", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rotated_at", DateTime(timezone=True), nullable=True),
    # Deleted endpoints stay for the delivery log's sake; nothing more is sent to them.
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    Index("ix_webhook_endpoints_merchant_id", "merchant_id"),
)

outbox = Outbox(outbox_table(metadata))
inbox = inbox_table(metadata)
timers = timers_table(metadata)
# Principals (API keys, people) this service accepts: written by `python -m services access`.
api_keys, users = access_tables(metadata)
