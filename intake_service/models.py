"""Tables of the intake schema."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.auth.tables import access_tables
from shared.db import make_metadata
from shared.messaging import Outbox, inbox_table, outbox_table
from shared.timers import timers_table

SCHEMA = "intake"
metadata = make_metadata(SCHEMA)

complaints = Table(
    "complaints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("complaint_number", Text, nullable=False, unique=True),
    Column("customer_id", Text, nullable=False),
    # PII stays in this schema (and notification's); events carry it sealed.
    Column("contact", JSONB, nullable=False),
    Column("preferred_contact_channel", Text, nullable=False),
    Column("order_number", Text, nullable=True),
    Column("merchant_id", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("category_hint", Text, nullable=True),
    Column("description", Text, nullable=False),
    Column("demands", JSONB, nullable=False),
    Column("product", JSONB, nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("status", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("respond_by", DateTime(timezone=True), nullable=False),
    Column("correlation_id", Text, nullable=False),
    # The storefront whose API key posted it: its reads are scoped to this (null before 0004).
    Column("storefront_id", Text, nullable=True),
    # The front door's fields (intake_0006): the order, when it happened, why after-sales.
    Column("order", JSONB, nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=True),
    Column("after_sales_reason", Text, nullable=True),
    Column("customer_flags", JSONB, nullable=False, server_default="[]"),
    # The initial checks' decisions: what is missing, why rejected, other notes.
    Column("missing", JSONB, nullable=False, server_default="[]"),
    Column("info_due_at", DateTime(timezone=True), nullable=True),
    Column("rejection", JSONB, nullable=True),
    Column("notes", JSONB, nullable=False, server_default="[]"),
    # The customer's view, fed by intake's decisions and the other services' events.
    Column("visible_state", Text, nullable=False, server_default="pending_acceptance"),
    Column("state_changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("next_step", Text, nullable=True),
    Column("next_step_due_at", DateTime(timezone=True), nullable=True),
    Column("withdrawn_at", DateTime(timezone=True), nullable=True),
    Column("erased_at", DateTime(timezone=True), nullable=True),
    Index("ix_complaints_customer_id_received_at", "customer_id", "received_at"),
    Index("ix_complaints_merchant_id_received_at", "merchant_id", "received_at"),
)

# Complaint numbers (year+month+sequence, 202405-000001) come from one Postgres sequence per
# month through intake.next_complaint_number(period): see migration intake_0003.

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # Keys are the caller's own: another caller reusing a key neither replays nor learns of it.
    Column("caller", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_fingerprint", Text, nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_body", JSONB, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)

# Files a storefront uploaded for a customer (photos, videos, receipts...): the content is in
# the evidence storage under `storage_key`; a complaint takes them when it is created.
evidence = Table(
    "evidence",
    metadata,
    Column("id", Uuid, primary_key=True),
    # Scope: the storefront that uploaded it, for which customer.
    Column("storefront_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("complaint_id", Uuid, ForeignKey(complaints.c.id), nullable=True),
    Column("kind", Text, nullable=False),
    Column("media_type", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("storage_key", Text, nullable=False, unique=True),
    Column("original_filename", Text, nullable=True),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
    # Content deleted from storage (customer erasure); the row stays as the record.
    Column("erased_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("size_bytes > 0", name="size_positive"),
    CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
    Index("ix_evidence_complaint_id", "complaint_id"),
    Index("ix_evidence_customer_id_storefront_id", "customer_id", "storefront_id"),
    # Unattached uploads by age: what the orphan purge reads.
    Index(
        "ix_evidence_unattached_uploaded_at",
        "uploaded_at",
        postgresql_where=text("complaint_id IS NULL"),
    ),
)

# The customer-visible steps of each complaint, in order (the customer's timeline).
timeline = Table(
    "timeline",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("complaint_id", Uuid, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("code", Text, nullable=False),
    Column("summary_zh", Text, nullable=False),
    Column("summary_en", Text, nullable=False),
    Column("details", JSONB, nullable=False, server_default="{}"),
    Index("ix_timeline_complaint_id_at", "complaint_id", "at"),
)

# Accounts flagged (e.g. suspected abuse): complaints carry the flag, remedies need approval.
account_flags = Table(
    "account_flags",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("flag", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("flagged_at", DateTime(timezone=True), nullable=False),
    Column("flagged_by", Text, nullable=False),
)

# Each erasure request carried out: what it covered (no personal data kept here).
erasures = Table(
    "erasures",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("complaints_redacted", Integer, nullable=False),
    Column("evidence_deleted", Integer, nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

outbox = Outbox(outbox_table(metadata))
inbox = inbox_table(metadata)
timers = timers_table(metadata)
# Principals (API keys, people) this service accepts: written by `python -m services access`.
api_keys, users = access_tables(metadata)
