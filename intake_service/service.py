"""Intake rules: numbering, receipts, idempotent submission. Flushes, never commits."""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from intake_service import repository
from intake_service.config import Settings
from intake_service.models import outbox
from intake_service.schemas import ComplaintCreate, ComplaintReceipt, ComplaintView, ContactView
from shared.errors import NotFoundError, UnprocessableError
from shared.events import ComplaintReceived, new_event
from shared.events.vocabulary import Channel
from shared.pii import mask_email, mask_name, mask_phone, seal
from shared.time import utcnow

PRODUCER = "intake_service"
STATUS_RECEIVED = "received"


@dataclass(frozen=True)
class Submission:
    """The outcome of a POST: the receipt, and whether it replays an earlier response."""

    status_code: int
    body: dict[str, Any]
    replayed: bool


def format_complaint_number(period: str, sequence: int) -> str:
    """Formats year+month+sequence, e.g. 202405-000001 (more digits once past a million)."""
    return f"{period}-{sequence:06d}"


def request_fingerprint(request: ComplaintCreate) -> str:
    """A stable hash of the request body, to tell a retry from a different request."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def submit_complaint(
    session: AsyncSession,
    *,
    request: ComplaintCreate,
    idempotency_key: str | None,
    correlation_id: str,
    settings: Settings,
) -> Submission:
    """Accepts a complaint once per idempotency key (Stripe semantics)."""
    if idempotency_key is None:
        receipt = await receive_complaint(
            session, request=request, correlation_id=correlation_id, settings=settings
        )
        return Submission(201, receipt.model_dump(mode="json"), replayed=False)

    fingerprint = request_fingerprint(request)
    now = utcnow()
    expires_at = now + timedelta(hours=settings.idempotency_key_ttl_hours)
    claimed = await repository.claim_idempotency_key(
        session, key=idempotency_key, fingerprint=fingerprint, expires_at=expires_at
    )
    if not claimed:
        record = await repository.get_idempotency_record(session, key=idempotency_key)
        if record is not None and record.expires_at < now:
            await repository.delete_idempotency_key(session, key=idempotency_key)
            claimed = await repository.claim_idempotency_key(
                session, key=idempotency_key, fingerprint=fingerprint, expires_at=expires_at
            )
        elif record is not None:
            return _replay(record, fingerprint)
    if not claimed:
        raise UnprocessableError("Idempotency-Key is in use by a concurrent request; retry")
    receipt = await receive_complaint(
        session, request=request, correlation_id=correlation_id, settings=settings
    )
    body = receipt.model_dump(mode="json")
    await repository.store_idempotent_response(session, key=idempotency_key, status=201, body=body)
    return Submission(201, body, replayed=False)


def _replay(record: Row[Any], fingerprint: str) -> Submission:
    if record.request_fingerprint != fingerprint:
        raise UnprocessableError(
            "Idempotency-Key was already used with a different request body",
            idempotency_key=record.key,
        )
    if record.response_status is None:
        raise UnprocessableError("Idempotency-Key is in use by a concurrent request; retry")
    return Submission(record.response_status, dict(record.response_body), replayed=True)


async def receive_complaint(
    session: AsyncSession, *, request: ComplaintCreate, correlation_id: str, settings: Settings
) -> ComplaintReceipt:
    """Numbers and stores a complaint and emits complaint.received in the same transaction."""
    received_at = utcnow()
    period = received_at.strftime("%Y%m")
    sequence = await repository.next_complaint_sequence(session, period=period)
    complaint_id = uuid.uuid4()
    number = format_complaint_number(period, sequence)
    respond_by = received_at + timedelta(
        seconds=settings.response_promise_seconds.get(request.channel, 24 * 3600)
    )
    contact = request.customer.model_dump(
        mode="json", include={"name", "phone", "email", "preferred_channel"}
    )
    await repository.insert_complaint(
        session,
        {
            "id": complaint_id,
            "complaint_number": number,
            "customer_id": request.customer.customer_id,
            "contact": contact,
            "preferred_contact_channel": request.customer.preferred_channel.value,
            "order_number": request.order_number,
            "merchant_id": request.merchant_id,
            "channel": request.channel.value,
            "target": request.target.value,
            "category_hint": request.category_hint.value if request.category_hint else None,
            "description": request.description,
            "demands": [demand.model_dump(mode="json") for demand in request.demands],
            "product": request.product.model_dump(mode="json") if request.product else None,
            "delivered_at": request.delivered_at,
            "status": STATUS_RECEIVED,
            "received_at": received_at,
            "respond_by": respond_by,
            "correlation_id": correlation_id,
        },
    )
    payload = ComplaintReceived(
        complaint_number=number,
        customer_id=request.customer.customer_id,
        sealed_contact=seal(contact, settings.pii_key),
        preferred_contact_channel=request.customer.preferred_channel,
        order_number=request.order_number,
        merchant_id=request.merchant_id,
        channel=request.channel,
        target=request.target,
        category_hint=request.category_hint,
        description=request.description,
        demands=request.demands,
        product=request.product,
        delivered_at=request.delivered_at,
        received_at=received_at,
    )
    await outbox.add(
        session,
        new_event(
            payload, producer=PRODUCER, complaint_id=complaint_id, correlation_id=correlation_id
        ),
    )
    return ComplaintReceipt(
        complaint_id=complaint_id,
        complaint_number=number,
        status=STATUS_RECEIVED,
        received_at=received_at,
        respond_by=respond_by,
    )


async def purge_expired_idempotency_keys(session: AsyncSession, now: datetime) -> int:
    """Forgets idempotency keys past their retention (kept at least 24 h)."""
    return await repository.purge_expired_idempotency_keys(session, now=now)


async def get_complaint(session: AsyncSession, *, complaint_id: UUID) -> ComplaintView:
    """Gets intake's view of a complaint, contact data masked."""
    row = await repository.get_complaint(session, complaint_id=complaint_id)
    if row is None:
        raise NotFoundError(f"complaint {complaint_id} not found")
    contact = row.contact
    return ComplaintView(
        complaint_id=row.id,
        complaint_number=row.complaint_number,
        status=row.status,
        customer_id=row.customer_id,
        contact=ContactView(
            name=mask_name(contact.get("name")),
            phone=mask_phone(contact.get("phone")),
            email=mask_email(contact.get("email")),
            preferred_channel=contact["preferred_channel"],
        ),
        order_number=row.order_number,
        merchant_id=row.merchant_id,
        channel=Channel(row.channel),
        target=row.target,
        category_hint=row.category_hint,
        description=row.description,
        demands=row.demands,
        product=row.product,
        delivered_at=row.delivered_at,
        received_at=row.received_at,
        respond_by=row.respond_by,
        correlation_id=row.correlation_id,
    )
