"""Tables of the notification schema."""

from sqlalchemy import Column, DateTime, Index, Table, Text, UniqueConstraint, Uuid

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

outbox = Outbox(outbox_table(metadata))
inbox = inbox_table(metadata)
timers = timers_table(metadata)
# Principals (API keys, people) this service accepts: written by `python -m services access`.
api_keys, users = access_tables(metadata)
