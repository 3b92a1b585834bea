"""Tables of the intake schema."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
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
from shared.messaging import Outbox, outbox_table
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

outbox = Outbox(outbox_table(metadata))
timers = timers_table(metadata)
# Principals (API keys, people) this service accepts: written by `python -m services access`.
api_keys, users = access_tables(metadata)
