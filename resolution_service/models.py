"""Tables of the resolution schema."""

from sqlalchemy import Column, DateTime, Index, Table, Text, Uuid

from shared.auth.tables import access_tables
from shared.db import make_metadata
from shared.messaging import Outbox, inbox_table, outbox_table
from shared.timers import timers_table

SCHEMA = "resolution"
metadata = make_metadata(SCHEMA)

cases = Table(
    "cases",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("complaint_id", Uuid, nullable=False, unique=True),
    Column("complaint_number", Text, nullable=False),
    Column("merchant_id", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("team", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("first_response_due_at", DateTime(timezone=True), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("correlation_id", Text, nullable=False),
    Index("ix_cases_merchant_id_status", "merchant_id", "status"),
)

outbox = Outbox(outbox_table(metadata))
inbox = inbox_table(metadata)
timers = timers_table(metadata)
# Principals (API keys, people) this service accepts: written by `python -m services access`.
api_keys, users = access_tables(metadata)
