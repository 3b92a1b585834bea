"""Tables of the triage schema."""

from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, Table, Text, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

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
    # True until a person re-triages the complaint.
    Column("provisional", Boolean, nullable=False),
    # Every reason of `reasons`, joined: the one-line summary older readers show.
    Column("reason", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # None while the SLA clocks are paused (no deadline runs then).
    Column("first_response_due_at", DateTime(timezone=True), nullable=True),
    Column("triaged_at", DateTime(timezone=True), nullable=False),
    Column("correlation_id", Text, nullable=False),
    # What the classifier decided and why (NULL on rows triaged before the classifier).
    Column("subcategory", Text, nullable=True),
    Column("confidence", Float, nullable=True),
    Column("manual_review", Boolean, nullable=False, server_default=text("false")),
    Column("responsibility", Text, nullable=True),
    Column("reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # The features that pushed hardest towards the tag: words of the training vocabulary only.
    Column("signals", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("classifier_version", Text, nullable=True),
    # What the classifier read, kept so an agent's correction can teach it. The description is
    # the customer's own words: NULL once the customer is erased.
    Column("description", Text, nullable=True),
    Column("target", Text, nullable=True),
    Column("channel", Text, nullable=True),
    Column("demands", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # The order's SKUs, for group complaints on one product.
    Column("skus", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    # merchant:<id> or sku:<sku> when the complaint is one of a group complaint.
    Column("group_key", Text, nullable=True),
    Column("resolution_due_at", DateTime(timezone=True), nullable=True),
    # (paused_at, resumed_at) pairs as ISO strings, the last one open while paused.
    Column("pauses", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # Withdrawn by the customer, or the case completed or closed: every clock stopped.
    Column("stopped_at", DateTime(timezone=True), nullable=True),
    Column("stop_reason", Text, nullable=True),
    # What the SLA announced, each the instant it was due (domain/sla.py).
    Column("first_response_warned_at", DateTime(timezone=True), nullable=True),
    Column("first_response_breached_at", DateTime(timezone=True), nullable=True),
    Column("resolution_warned_at", DateTime(timezone=True), nullable=True),
    Column("resolution_breached_at", DateTime(timezone=True), nullable=True),
    Column("escalation_level", Integer, nullable=False, server_default=text("0")),
    # The first thing an agent did on the case (triage_0006): the first response was given.
    Column("first_responded_at", DateTime(timezone=True), nullable=True),
    Column("retriaged_at", DateTime(timezone=True), nullable=True),
    Column("retriaged_by", Text, nullable=True),
    Column("retriage_reason", Text, nullable=True),
    Index("ix_triages_priority_first_response_due_at", "priority", "first_response_due_at"),
    # Team queues: open complaints by deadline.
    Index(
        "ix_triages_team_first_response_due_at",
        "team",
        "first_response_due_at",
        postgresql_where=text("stopped_at IS NULL"),
    ),
    Index("ix_triages_merchant_id_received_at", "merchant_id", "received_at"),
    Index("ix_triages_customer_id_received_at", "customer_id", "received_at"),
    Index("ix_triages_skus", "skus", postgresql_using="gin"),
    Index("ix_triages_group_key", "group_key", postgresql_where=text("group_key IS NOT NULL")),
)

# Agents' re-triages: what they changed and why. Those that name a category or tag teach the
# classifier when it is trained again (domain/classifier.py, retrain).
corrections = Table(
    "corrections",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("complaint_id", Uuid, nullable=False),
    # The customer's own words, as the classifier read them: NULL once the customer is erased.
    Column("description", Text, nullable=True),
    Column("target", Text, nullable=True),
    Column("channel", Text, nullable=True),
    Column("demands", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("previous_category", Text, nullable=False),
    Column("previous_subcategory", Text, nullable=True),
    Column("previous_priority", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("subcategory", Text, nullable=True),
    Column("priority", Text, nullable=False),
    Column("teaches_classifier", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("corrected_by", Text, nullable=False),
    Column("corrected_at", DateTime(timezone=True), nullable=False),
    Index("ix_corrections_complaint_id", "complaint_id"),
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
# One SLA timer per complaint (kind triage.sla, key the complaint id): see service.py.
timers = timers_table(metadata)
# Principals (API keys, people) this service accepts: written by `python -m services access`.
api_keys, users = access_tables(metadata)
