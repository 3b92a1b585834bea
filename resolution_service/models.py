"""Tables of the resolution schema."""

from sqlalchemy import (
    ARRAY,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.auth.tables import access_tables
from shared.db import make_metadata
from shared.messaging import Outbox, inbox_table, outbox_table
from shared.timers import timers_table

SCHEMA = "resolution"
metadata = make_metadata(SCHEMA)
MONEY = Numeric(12, 2)


def _tz(name: str, *, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


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
    # The customer-visible state (CaseStatus) of `state`, kept beside it for readers.
    Column("status", Text, nullable=False),
    Column("first_response_due_at", DateTime(timezone=True), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("correlation_id", Text, nullable=False),
    # The lifecycle's state (domain.lifecycle.CaseState) and the facts its guards read.
    Column("state", Text, nullable=False, server_default=text("'open'")),
    Column("subcategory", Text, nullable=True),
    Column("responsibility_hypothesis", Text, nullable=True),
    Column("responsibility", Text, nullable=True),
    Column("responsibility_reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("assignee_id", Text, nullable=True),
    _tz("assigned_at"),
    _tz("verification_requested_at"),
    _tz("verification_due_at"),
    Column("verification", JSONB, nullable=True),
    # The offer on the table (domain.policy.Proposal, see service.proposal_from_dict).
    Column("proposal", JSONB, nullable=True),
    Column("proposed_by", Text, nullable=True),
    Column("negotiation_rounds", Integer, nullable=False, server_default=text("0")),
    Column("mediation_held", Boolean, nullable=False, server_default=false()),
    Column("demanded_compensation", MONEY, nullable=True),
    Column("referral", JSONB, nullable=True),
    Column("accepted_offer", JSONB, nullable=True),
    _tz("execution_started_at"),
    _tz("decided_at"),
    Column("decided_by", Text, nullable=True),
    _tz("auto_close_at"),
    _tz("appeal_window_ends_at"),
    Column("appealed_before", Boolean, nullable=False, server_default=false()),
    Column("reviewer_id", Text, nullable=True),
    Index("ix_cases_merchant_id_status", "merchant_id", "status"),
    Index("ix_cases_team_state", "team", "state"),
    Index("ix_cases_assignee_id_state", "assignee_id", "state"),
)

# What resolution needs of complaint.received: where the customer acts from (storefront), the
# account's flags (approval), and the order's facts the compensation policy reads.
complaint_facts = Table(
    "complaint_facts",
    metadata,
    Column("complaint_id", Uuid, primary_key=True),
    Column("storefront_id", Text, nullable=True),
    Column("customer_id", Text, nullable=False),
    Column("customer_flags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("order_amount", MONEY, nullable=True),
    Column("currency", Text, nullable=False, server_default=text("'CNY'")),
    _tz("delivered_at"),
    Column("demands", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("after_sales_reason", Text, nullable=True),
    Column("returnable_without_reason", Boolean, nullable=False, server_default=true()),
    _tz("received_at", nullable=False),
    _tz("erased_at"),
)

# Who did what, when, from which service: every transition, note and piece of evidence.
case_timeline = Table(
    "case_timeline",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id"), nullable=False),
    _tz("at", nullable=False),
    Column("actor", Text, nullable=False),
    Column("service", Text, nullable=False),
    Column("kind", Text, nullable=False),
    # Whose words a note carries: customer, merchant, carrier or agent.
    Column("source", Text, nullable=True),
    Column("note", Text, nullable=True),
    Column("evidence_refs", ARRAY(Text), nullable=False, server_default="{}"),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_case_timeline_case_id_at", "case_id", "at"),
)

# Proof of consent (同意凭证): who accepted exactly which offer, when, on which channel.
consents = Table(
    "consents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id"), nullable=False),
    Column("customer_id", Text, nullable=False),
    _tz("consented_at", nullable=False),
    Column("channel", Text, nullable=False),
    Column("offer", Text, nullable=False),
    Column("offer_hash", Text, nullable=False),
    Column("summary", JSONB, nullable=False),
    Index("ix_consents_case_id", "case_id"),
)

# Each report on an execution task, in order: the tasks are replayed from the accepted offer.
task_reports = Table(
    "task_reports",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("task_key", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("facts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _tz("at", nullable=False),
    Column("actor", Text, nullable=False),
    UniqueConstraint("case_id", "seq", name="uq_task_reports_case_id_seq"),
)

# Who pays each remedy's cost (domain.ledger), summed per merchant and per carrier.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id"), nullable=False),
    Column("merchant_id", Text, nullable=False),
    Column("party", Text, nullable=False),
    Column("party_id", Text, nullable=True),
    Column("amount", MONEY, nullable=False),
    Column("currency", Text, nullable=False),
    Column("remedy", Text, nullable=False),
    Column("cost", Text, nullable=False),
    Column("reason", Text, nullable=False),
    _tz("recorded_at", nullable=False),
    Index("ix_ledger_entries_party_party_id", "party", "party_id"),
)

# Idempotency-Keys of the actions: a caller's key, the request it was used for, the first
# response; kept IDEMPOTENCY_KEY_DAYS (service.py), then purged.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("caller", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_sha256", Text, nullable=False),
    Column("response", JSONB, nullable=True),
    _tz("created_at", nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

outbox = Outbox(outbox_table(metadata))
inbox = inbox_table(metadata)
timers = timers_table(metadata)
# Principals (API keys, people) this service accepts: written by `python -m services access`.
api_keys, users = access_tables(metadata)
