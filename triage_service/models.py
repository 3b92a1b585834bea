"""Tables of the triage schema."""

from sqlalchemy import Boolean, Column, DateTime, Index, Table, Text, Uuid

from shared.auth.tables import access_tables
from shared.db import make_metadata
from shared.messaging import Outbox, inbox_table, outbox_table
from shared.timers import timers_table

SCHEMA = "triage"
metadata = make_metadata(SCHEMA)

triages = Table(
    "triages",
    metadata,
    Column("complaint_id", Uuid, primary_key=True),
    Column("complaint_number", Text, nullable=False),
    Column("merchant_id", Text, nullable=False),
    # Once the customer is erased: a pseudonym (shared.pii.customer_pseudonym), so counts per
    # customer still add up while the row no longer names them.
    Column("customer_id", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("team", Text, nullable=False),
    Column("provisional", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("first_response_due_at", DateTime(timezone=True), nullable=False),
    Column("triaged_at", DateTime(timezone=True), nullable=False),
    Column("correlation_id", Text, nullable=False),
    Index("ix_triages_priority_first_response_due_at", "priority", "first_response_due_at"),
)

# Complaints whose customer was erased: a later or replayed complaint.received stores the
# pseudonym, never the customer id again.
erasures = Table(
    "erasures",
    metadata,
    Column("complaint_id", Uuid, primary_key=True),
    Column("customer_pseudonym", Text, nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

outbox = Outbox(outbox_table(metadata))
inbox = inbox_table(metadata)
timers = timers_table(metadata)
# Principals (API keys, people) this service accepts: written by `python -m services access`.
api_keys, users = access_tables(metadata)
