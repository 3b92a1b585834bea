"""Intake rules: numbering, receipts, idempotent submission. Flushes, never commits."""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from intake_service import repository
from intake_service.config import Settings
from intake_service.models import outbox
from intake_service.schemas import ComplaintCreate, ComplaintReceipt, ComplaintView, ContactView
from shared.auth import Principal, ensure_visible
from shared.errors import ConflictError, NotFoundError, UnprocessableError
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


def request_fingerprint(request: ComplaintCreate) -> str:
    """A stable hash of the request body, to tell a retry from a different request."""
    canonical = orjson.dumps(request.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


class IdempotencyKeyTakenError(Exception):
    """The caller's key already has a response: this request's work must be rolled back.

    The edge rolls the transaction back and answers with `replay_submission` (the first
    response, or 422 when the body differs).
    """

    def __init__(self, *, caller: str, key: str, fingerprint: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} already used by {caller!r}")
        self.caller = caller
        self.key = key
        self.fingerprint = fingerprint


async def submit_complaint(
    session: AsyncSession,
    *,
    request: ComplaintCreate,
    idempotency_key: str | None,
    caller: str,
    storefront_id: str | None,
    correlation_id: str,
    settings: Settings,
) -> Submission:
    """Accepts a complaint once per caller and idempotency key (Stripe semantics).

    The key is stored last, with the response, in the same transaction: a request that
    finds it taken (a retry, or a concurrent twin that committed first) raises
    IdempotencyKeyTakenError and its own work is rolled back.
    """
    receipt = await receive_complaint(
        session,
        request=request,
        storefront_id=storefront_id,
        correlation_id=correlation_id,
        settings=settings,
    )
    body = receipt.model_dump(mode="json")
    if idempotency_key is not None:
        now = utcnow()
        fingerprint = request_fingerprint(request)
        stored = await repository.store_idempotent_response(
            session,
            caller=caller,
            key=idempotency_key,
            fingerprint=fingerprint,
            status=201,
            body=body,
            expires_at=now + timedelta(hours=settings.idempotency_key_ttl_hours),
            now=now,
        )
        if not stored:
            raise IdempotencyKeyTakenError(
                caller=caller, key=idempotency_key, fingerprint=fingerprint
            )
    return Submission(201, body, replayed=False)


async def replay_submission(
    session: AsyncSession, *, caller: str, key: str, fingerprint: str
) -> Submission:
    """The response first given to a caller's key; 422 if this request's body differs."""
    record = await repository.get_idempotency_record(session, caller=caller, key=key)
    if record is None or record.response_status is None:
        # Purged between the two transactions: the client's retry will be a fresh request.
        raise ConflictError("Idempotency-Key is being reused concurrently; retry")
    if record.request_fingerprint != fingerprint:
        raise UnprocessableError(
            "Idempotency-Key was already used with a different request body",
            idempotency_key=key,
        )
    return Submission(record.response_status, dict(record.response_body), replayed=True)


async def receive_complaint(
    session: AsyncSession,
    *,
    request: ComplaintCreate,
    storefront_id: str | None,
    correlation_id: str,
    settings: Settings,
) -> ComplaintReceipt:
    """Numbers and stores a complaint and emits complaint.received in the same transaction."""
    received_at = utcnow()
    complaint_id = uuid.uuid4()
    respond_by = received_at + timedelta(
        seconds=settings.response_promise_seconds.get(request.channel, 24 * 3600)
    )
    contact = request.customer.model_dump(
        mode="json", include={"name", "phone", "email", "preferred_channel"}
    )
    number = await repository.insert_complaint(
        session,
        {
            "id": complaint_id,
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
            "storefront_id": storefront_id,
        },
        period=received_at.strftime("%Y%m"),
    )
    payload = ComplaintReceived(
        complaint_number=number,
        customer_id=request.customer.customer_id,
        sealed_contact=seal(contact, settings.pii_keyring),
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
        storefront_id=storefront_id,
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


async def get_complaint(
    session: AsyncSession, *, complaint_id: UUID, principal: Principal
) -> ComplaintView:
    """Gets intake's view of a complaint, contact data masked, if the caller's scope covers it."""
    row = await repository.get_complaint(session, complaint_id=complaint_id)
    missing = f"complaint {complaint_id} not found"
    if row is None:
        raise NotFoundError(missing)
    ensure_visible(
        principal,
        missing,
        merchant_id=row.merchant_id,
        storefront_id=row.storefront_id,
        customer_id=row.customer_id,
    )
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
