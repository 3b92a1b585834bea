"""Intake rules: numbering, receipts, idempotent submission. Flushes, never commits."""

import base64
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from intake_service import repository
from intake_service.config import Settings
from intake_service.domain.completeness import Missing, missing_items
from intake_service.domain.customer_view import (
    FINAL_INTAKE_STATUSES,
    OPEN_STATES,
    VISIBLE_BY_INTAKE_STATUS,
    WITHDRAWABLE,
    IntakeStatus,
    Step,
    ViewState,
    VisibleState,
    apply_change,
    intake_step,
    view_change,
)
from intake_service.domain.duplicates import OpenComplaint, find_duplicate, over_open_cap
from intake_service.domain.evidence import (
    AttachmentCandidate,
    ContentInspector,
    EvidenceKind,
    EvidenceRefused,
    InspectedContent,
    RefusalReason,
    attachment_problems,
    sanitise_filename,
)
from intake_service.domain.facts import ComplaintFacts, DemandFact
from intake_service.domain.numbering import numbering_period
from intake_service.domain.promises import first_response_due, info_due
from intake_service.domain.scope import check_scope
from intake_service.domain.windows import WINDOW_ALTERNATIVE, WINDOW_EXPIRED_CODE, check_window
from intake_service.models import outbox
from intake_service.schemas import (
    AccountFlag,
    AccountFlagView,
    ComplaintCreate,
    ComplaintPage,
    ComplaintReceipt,
    ComplaintSummary,
    ComplaintSupplement,
    ComplaintView,
    ContactView,
    ErasureReceipt,
    EvidenceReceipt,
    EvidenceView,
    MissingItemView,
    NextStepView,
    RejectionView,
    TimelineStepView,
    Withdrawal,
)
from intake_service.storage import (
    STORAGE_ERRORS,
    ContentMissingError,
    EvidenceStorage,
    evidence_storage,
)
from shared.auth import Principal, Role, ensure_visible
from shared.errors import (
    ConflictError,
    ContentTooLargeError,
    GoneError,
    NotFoundError,
    ProblemError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from shared.events import (
    ComplaintInfoRequested,
    ComplaintInfoSupplied,
    ComplaintLinkedDuplicate,
    ComplaintReceived,
    ComplaintRejected,
    ComplaintWithdrawn,
    CustomerErased,
    Demand,
    EventEnvelope,
    EventPayload,
    EvidenceRef,
    MissingItem,
    OrderRef,
    ProductRef,
    new_event,
)
from shared.pii import mask_email, mask_name, mask_phone, seal
from shared.time import utcnow

PRODUCER = "intake_service"
logger = logging.getLogger(__name__)
OPEN_STATE_VALUES = sorted(state.value for state in OPEN_STATES)
# What an erased complaint's description reads.
ERASED_TEXT = "[erased at the customer's request]"


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


@dataclass(frozen=True)
class IdempotencyClaim:
    """A caller's Idempotency-Key for one request; stored with its response, never alone."""

    caller: str
    key: str
    fingerprint: str
    now: datetime
    expires_at: datetime

    def response(self, status: int, body: dict[str, Any]) -> repository.IdempotentResponse:
        """The key with the response that answers it."""
        return repository.IdempotentResponse(
            caller=self.caller,
            key=self.key,
            fingerprint=self.fingerprint,
            status=status,
            body=body,
            expires_at=self.expires_at,
            now=self.now,
        )

    def taken(self) -> IdempotencyKeyTakenError:
        """The error for a key that already has a response."""
        return IdempotencyKeyTakenError(
            caller=self.caller, key=self.key, fingerprint=self.fingerprint
        )


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

    The key is stored with the response, in the same transaction as the complaint: a request
    that finds it taken (a retry, or a concurrent twin that committed first) raises
    IdempotencyKeyTakenError and its own work is rolled back.
    """
    claim = None
    if idempotency_key is not None:
        now = utcnow()
        claim = IdempotencyClaim(
            caller=caller,
            key=idempotency_key,
            fingerprint=request_fingerprint(request),
            now=now,
            expires_at=now + timedelta(hours=settings.idempotency_key_ttl_hours),
        )
    try:
        receipt = await receive_complaint(
            session,
            request=request,
            storefront_id=storefront_id,
            correlation_id=correlation_id,
            settings=settings,
            idempotency=claim,
        )
    except EvidenceNotAttachableError:
        # A retry of a stored complaint finds its evidence attached already: like any reused
        # key, it is answered with the first response (or 422 if its body differs).
        if claim is not None and await _key_answered(session, caller, claim.key):
            raise claim.taken() from None
        raise
    return Submission(_status_of(receipt), receipt.model_dump(mode="json"), replayed=False)


def _status_of(receipt: ComplaintReceipt) -> int:
    # A repeated submission creates nothing: 200 with the open complaint it was added to.
    return 200 if receipt.duplicate_of_open else 201


async def _key_answered(session: AsyncSession, caller: str, key: str) -> bool:
    record = await repository.get_idempotency_record(session, caller=caller, key=key)
    return record is not None and record.response_status is not None


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


def complaint_facts(
    *,
    target: str,
    demands: list[Demand],
    after_sales_reason: str | None,
    order: OrderRef | None,
    occurred_at: datetime | None,
    evidence_count: int,
) -> ComplaintFacts:
    """The facts the initial checks decide on, from a request or a stored complaint."""
    return ComplaintFacts(
        target=target,
        demands=tuple(DemandFact(d.type, d.amount) for d in demands),
        after_sales_reason=after_sales_reason,
        order_number=order.number if order else None,
        order_amount=order.amount if order else None,
        order_item_count=len(order.items) if order else 0,
        all_items_returnable_without_reason=all(
            item.returnable_without_reason for item in (order.items if order else [])
        ),
        delivered_at=order.delivered_at if order else None,
        occurred_at=occurred_at,
        evidence_count=evidence_count,
    )


@dataclass(frozen=True)
class CheckOutcome:
    """The initial checks' verdict: the status, and each decision with its reason."""

    status: IntakeStatus
    missing: tuple[Missing, ...] = ()
    rejection: RejectionView | None = None
    notes: tuple[str, ...] = ()


def run_initial_checks(facts: ComplaintFacts, *, now: datetime, settings: Settings) -> CheckOutcome:
    """Window, scope, then completeness: rejected beats needs_info beats received."""
    window = check_window(facts, settings.after_sales_windows, now)
    if window.rejected:
        return CheckOutcome(
            IntakeStatus.REJECTED,
            rejection=RejectionView(
                code=WINDOW_EXPIRED_CODE, reason=window.reason, alternative=WINDOW_ALTERNATIVE
            ),
        )
    out_of_scope = check_scope(facts, settings.scope_policy)
    if out_of_scope is not None:
        return CheckOutcome(
            IntakeStatus.REJECTED,
            rejection=RejectionView(
                code=out_of_scope.code,
                reason=out_of_scope.reason,
                alternative=out_of_scope.alternative,
            ),
        )
    # Some demands out of time, others not: the complaint goes on, the decision is noted.
    notes = (f"not pursued, out of time: {window.reason}",) if window.expired else ()
    missing = missing_items(facts)
    if missing:
        return CheckOutcome(IntakeStatus.NEEDS_INFO, missing=missing, notes=notes)
    return CheckOutcome(IntakeStatus.RECEIVED, notes=notes)


async def receive_complaint(
    session: AsyncSession,
    *,
    request: ComplaintCreate,
    storefront_id: str | None,
    correlation_id: str,
    settings: Settings,
    idempotency: IdempotencyClaim | None = None,
) -> ComplaintReceipt:
    """Records a complaint: a duplicate is linked, otherwise it is numbered and checked.

    Every complaint is numbered and recorded, even one the checks reject; the event says
    what became of it (received, info requested or rejected) in the same transaction.
    With `idempotency`, the caller's key is stored with the receipt, or IdempotencyKeyTakenError
    is raised (the transaction must be rolled back).
    """
    now = utcnow()
    customer_id = request.customer.customer_id
    open_rows, flags = await repository.lock_customer_and_list_open(
        session, customer_id=customer_id, open_states=OPEN_STATE_VALUES
    )
    order_number = request.order.number if request.order else None
    duplicate = find_duplicate(
        (
            OpenComplaint(
                UUID(r["id"]),
                r["complaint_number"],
                r["order_number"],
                r["target"],
                datetime.fromisoformat(r["received_at"]),
            )
            for r in open_rows
        ),
        order_number=order_number,
        target=request.target.value,
        now=now,
        window=timedelta(days=settings.duplicate_window_days),
    )
    if duplicate is not None:
        receipt = await _link_duplicate(
            session, duplicate, request=request, correlation_id=correlation_id, now=now
        )
        if idempotency is not None and not await repository.store_idempotent_response(
            session, idempotency.response(_status_of(receipt), receipt.model_dump(mode="json"))
        ):
            raise idempotency.taken()
        return receipt
    if over_open_cap(len(open_rows), settings.max_open_complaints_per_customer):
        raise TooManyRequestsError(
            f"customer {customer_id} already has {len(open_rows)} open complaints, the most "
            "one customer may have at once; add to an open complaint or wait for one to close",
            open_complaints=len(open_rows),
            limit=settings.max_open_complaints_per_customer,
        )
    facts = complaint_facts(
        target=request.target.value,
        demands=list(request.demands),
        after_sales_reason=request.after_sales_reason,
        order=request.order,
        occurred_at=request.occurred_at,
        evidence_count=len(request.evidence_ids),
    )
    outcome = run_initial_checks(facts, now=now, settings=settings)
    complaint_id = uuid.uuid4()
    respond_by = first_response_due(
        request.channel.value,
        now,
        {channel.value: seconds for channel, seconds in settings.response_promise_seconds.items()},
        settings.default_response_promise_seconds,
    )
    contact = request.customer.model_dump(
        mode="json", include={"name", "phone", "email", "preferred_channel"}
    )
    info_due_at = (
        info_due(now, settings.info_answer_within_hours)
        if outcome.status is IntakeStatus.NEEDS_INFO
        else None
    )
    order_json = request.order.model_dump(mode="json") if request.order else None
    values: dict[str, Any] = {
        "id": complaint_id,
        "customer_id": customer_id,
        "contact": contact,
        "preferred_contact_channel": request.customer.preferred_channel.value,
        "order_number": order_number,
        "merchant_id": request.merchant_id,
        "channel": request.channel.value,
        "target": request.target.value,
        "category_hint": request.category_hint.value if request.category_hint else None,
        "description": request.description,
        "demands": [demand.model_dump(mode="json") for demand in request.demands],
        "product": _first_item_as_product(request.order),
        "delivered_at": request.order.delivered_at if request.order else None,
        "status": outcome.status.value,
        "received_at": now,
        "respond_by": respond_by,
        "correlation_id": correlation_id,
        "storefront_id": storefront_id,
        "order": order_json,
        "occurred_at": request.occurred_at,
        "after_sales_reason": request.after_sales_reason,
        "customer_flags": flags,
        "missing": [{"field": m.field, "reason": m.reason} for m in outcome.missing],
        "info_due_at": info_due_at,
        "rejection": outcome.rejection.model_dump() if outcome.rejection else None,
        "notes": list(outcome.notes),
        "visible_state": VISIBLE_BY_INTAKE_STATUS[outcome.status].value,
        "state_changed_at": now,
        "next_step": _next_step(outcome.status),
        "next_step_due_at": info_due_at
        if outcome.status is IntakeStatus.NEEDS_INFO
        else (respond_by if outcome.status is IntakeStatus.RECEIVED else None),
        "withdrawn_at": None,
        "erased_at": None,
    }
    evidence = await lock_evidence_for_complaint(
        session,
        evidence_ids=request.evidence_ids,
        storefront_id=storefront_id,
        customer_id=request.customer.customer_id,
        settings=settings,
    )
    step = intake_step(outcome.status, **_step_details(outcome))
    # The receipt is stored with the complaint, before its number is taken: the statement
    # writes the number into the stored copy.
    receipt = _receipt(values | {"complaint_number": ""}, outcome)
    inserted = await repository.insert_complaint(
        session,
        values,
        period=numbering_period(now, settings.timezone),
        first_step={
            "code": step.code,
            "summary_zh": step.summary_zh,
            "summary_en": step.summary_en,
            "details": _json_safe(step.details),
        },
        response=None
        if idempotency is None
        else idempotency.response(_status_of(receipt), receipt.model_dump(mode="json")),
    )
    if idempotency is not None and inserted.key_taken:
        raise idempotency.taken()
    values["complaint_number"] = inserted.number
    await attach_evidence(session, complaint_id=complaint_id, evidence=evidence)
    await _emit_outcome(session, values, outcome, settings=settings, evidence=evidence)
    return receipt.model_copy(update={"complaint_number": inserted.number})


def _first_item_as_product(order: OrderRef | None) -> dict[str, Any] | None:
    # Older readers know one product per complaint: the order's first line stands for it.
    if order is None or not order.items:
        return None
    item = order.items[0]
    return {"name": item.name, "spec": item.spec, "quantity": item.quantity}


def _next_step(status: IntakeStatus) -> str | None:
    return {
        IntakeStatus.RECEIVED: "first_response",
        IntakeStatus.NEEDS_INFO: "customer_supplies_information",
    }.get(status)


def _step_details(outcome: CheckOutcome) -> dict[str, Any]:
    if outcome.status is IntakeStatus.NEEDS_INFO:
        return {"missing": [m.field for m in outcome.missing]}
    if outcome.rejection is not None:
        return {"reason_code": outcome.rejection.code, "reason": outcome.rejection.reason}
    return {}


def _receipt(values: dict[str, Any], outcome: CheckOutcome) -> ComplaintReceipt:
    return ComplaintReceipt(
        complaint_id=values["id"],
        complaint_number=values["complaint_number"],
        status=outcome.status.value,
        received_at=values["received_at"],
        respond_by=values["respond_by"],
        missing=[MissingItemView(field=m.field, reason=m.reason) for m in outcome.missing],
        info_due_at=values["info_due_at"],
        rejection=outcome.rejection,
        notes=list(outcome.notes),
    )


async def _record_step(
    session: AsyncSession, complaint_id: UUID, step: Step, *, at: datetime
) -> None:
    await repository.add_timeline_step(
        session,
        {
            "complaint_id": complaint_id,
            "at": at,
            "code": step.code,
            "summary_zh": step.summary_zh,
            "summary_en": step.summary_en,
            "details": _json_safe(step.details),
        },
    )


def _json_safe(details: Mapping[str, Any]) -> dict[str, Any]:
    return dict(orjson.loads(orjson.dumps(dict(details), default=str)))


async def _emit_outcome(
    session: AsyncSession,
    values: dict[str, Any],
    outcome: CheckOutcome,
    *,
    settings: Settings,
    evidence: Sequence[EvidenceRef],
) -> None:
    """Emits what became of a complaint: received, info requested or rejected."""
    sealed = seal(values["contact"], settings.pii_keyring)
    now = utcnow()
    payload: EventPayload
    if outcome.status is IntakeStatus.RECEIVED:
        order = OrderRef.model_validate(values["order"]) if values["order"] else None
        product = values["product"]
        payload = ComplaintReceived(
            complaint_number=values["complaint_number"],
            customer_id=values["customer_id"],
            sealed_contact=sealed,
            preferred_contact_channel=values["preferred_contact_channel"],
            order_number=values["order_number"],
            merchant_id=values["merchant_id"],
            channel=values["channel"],
            target=values["target"],
            category_hint=values["category_hint"],
            description=values["description"],
            demands=[Demand.model_validate(d) for d in values["demands"]],
            product=ProductRef.model_validate(product) if product else None,
            delivered_at=values["delivered_at"],
            received_at=values["received_at"],
            storefront_id=values["storefront_id"],
            order=order,
            occurred_at=values["occurred_at"],
            after_sales_reason=values["after_sales_reason"],
            customer_flags=list(values["customer_flags"]),
            evidence=list(evidence),
        )
    elif outcome.status is IntakeStatus.NEEDS_INFO:
        payload = ComplaintInfoRequested(
            complaint_number=values["complaint_number"],
            customer_id=values["customer_id"],
            merchant_id=values["merchant_id"],
            channel=values["channel"],
            sealed_contact=sealed,
            preferred_contact_channel=values["preferred_contact_channel"],
            missing=[MissingItem(field=m.field, reason=m.reason) for m in outcome.missing],
            respond_by=values["info_due_at"],
            requested_at=now,
        )
    else:
        assert outcome.rejection is not None
        payload = ComplaintRejected(
            complaint_number=values["complaint_number"],
            customer_id=values["customer_id"],
            merchant_id=values["merchant_id"],
            channel=values["channel"],
            sealed_contact=sealed,
            preferred_contact_channel=values["preferred_contact_channel"],
            reason_code=outcome.rejection.code,
            reason=outcome.rejection.reason,
            alternative=outcome.rejection.alternative,
            rejected_at=now,
        )
    await _emit(session, payload, values)


async def _emit(
    session: AsyncSession,
    payload: EventPayload,
    values: Mapping[str, Any],
    *,
    causation: EventEnvelope[Any] | None = None,
) -> None:
    await outbox.add(
        session,
        new_event(
            payload,
            producer=PRODUCER,
            complaint_id=values["id"],
            correlation_id=values["correlation_id"],
            causation=causation,
        ),
    )


async def _link_duplicate(
    session: AsyncSession,
    duplicate: OpenComplaint,
    *,
    request: ComplaintCreate,
    correlation_id: str,
    now: datetime,
) -> ComplaintReceipt:
    """Adds a repeated submission to the open complaint it repeats; no second case."""
    # Locked like every other change of the complaint, so its events commit in their order.
    row = await repository.get_complaint_for_update(session, complaint_id=duplicate.complaint_id)
    assert row is not None  # listed under the customer's lock a moment ago
    await _record_step(
        session,
        row.id,
        Step(
            "duplicate_linked",
            "您再次提交的内容已并入此投诉",
            "Your new submission was added to this open complaint",
            {"description": request.description},
        ),
        at=now,
    )
    await _emit(
        session,
        ComplaintLinkedDuplicate(
            complaint_number=row.complaint_number,
            customer_id=row.customer_id,
            merchant_id=row.merchant_id,
            order_number=row.order_number,
            target=row.target,
            description=request.description,
            submitted_at=now,
        ),
        {"id": row.id, "correlation_id": correlation_id},
    )
    return ComplaintReceipt(
        complaint_id=row.id,
        complaint_number=row.complaint_number,
        status=row.status,
        received_at=row.received_at,
        respond_by=row.respond_by,
        missing=[MissingItemView(**m) for m in row.missing],
        info_due_at=row.info_due_at,
        duplicate_of_open=True,
        notes=[f"linked to open complaint {row.complaint_number} (same order and target)"],
    )


async def purge_expired_idempotency_keys(session: AsyncSession, now: datetime) -> int:
    """Forgets idempotency keys past their retention (kept at least 24 h)."""
    return await repository.purge_expired_idempotency_keys(session, now=now)


async def get_complaint(
    session: AsyncSession, *, complaint_id: UUID, principal: Principal
) -> ComplaintView:
    """The customer's view of a complaint, contact data masked, if the caller's scope covers it."""
    row = await repository.get_complaint(session, complaint_id=complaint_id)
    return await _view(session, row, f"complaint {complaint_id} not found", principal)


async def get_complaint_by_number(
    session: AsyncSession, *, number: str, principal: Principal
) -> ComplaintView:
    """The customer's view of a complaint found by its number."""
    row = await repository.get_complaint_by_number(session, number=number)
    return await _view(session, row, f"complaint {number} not found", principal)


def _ensure_visible(principal: Principal, row: Any, missing: str) -> None:
    ensure_visible(
        principal,
        missing,
        merchant_id=row.merchant_id,
        storefront_id=row.storefront_id,
        customer_id=row.customer_id,
    )


async def _view(
    session: AsyncSession, row: Any, missing: str, principal: Principal
) -> ComplaintView:
    if row is None:
        raise NotFoundError(missing)
    _ensure_visible(principal, row, missing)
    steps = await repository.timeline_of(session, complaint_id=row.id)
    contact = row.contact if row.erased_at is None else None
    return ComplaintView(
        complaint_id=row.id,
        complaint_number=row.complaint_number,
        status=row.status,
        visible_state=row.visible_state,
        next_step=_next_step_view(row),
        timeline=[
            TimelineStepView(
                at=step.at,
                code=step.code,
                summary_zh=step.summary_zh,
                summary_en=step.summary_en,
                details=step.details,
            )
            for step in steps
        ],
        customer_id=row.customer_id,
        contact=ContactView(
            name=mask_name(contact.get("name")),
            phone=mask_phone(contact.get("phone")),
            email=mask_email(contact.get("email")),
            preferred_channel=contact["preferred_channel"],
        )
        if contact
        else None,
        channel=row.channel,
        target=row.target,
        category_hint=row.category_hint,
        after_sales_reason=row.after_sales_reason,
        order=OrderRef.model_validate(row.order) if row.order else None,
        merchant_id=row.merchant_id,
        description=row.description,
        demands=row.demands,
        evidence=await complaint_evidence(session, complaint_id=row.id, principal=principal),
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        respond_by=row.respond_by,
        missing=[MissingItemView(**item) for item in row.missing],
        info_due_at=row.info_due_at,
        rejection=RejectionView(**row.rejection) if row.rejection else None,
        notes=list(row.notes),
        withdrawn_at=row.withdrawn_at,
        erased=row.erased_at is not None,
        correlation_id=row.correlation_id,
    )


def _next_step_view(row: Any) -> NextStepView | None:
    if row.next_step is None:
        return None
    return NextStepView(step=row.next_step, due_at=row.next_step_due_at)


async def customer_history(
    session: AsyncSession,
    *,
    customer_id: str,
    principal: Principal,
    visible_state: str | None,
    target: str | None,
    received_from: datetime | None,
    received_to: datetime | None,
    cursor: str | None,
    limit: int,
) -> ComplaintPage:
    """A customer's complaints, newest first, filtered and paged by an opaque cursor.

    Only what the caller's scope covers is listed: a storefront sees the complaints it
    posted (for the customer it names, if any), a merchant those about it.
    """
    if principal.role is Role.STOREFRONT and principal.customer_id not in (None, customer_id):
        return ComplaintPage(items=[], next_cursor=None)
    rows = await repository.customer_history(
        session,
        customer_id=customer_id,
        storefront_id=principal.storefront_id if principal.role is Role.STOREFRONT else None,
        merchant_id=principal.merchant_id if principal.role is Role.MERCHANT else None,
        visible_state=visible_state,
        target=target,
        received_from=received_from,
        received_to=received_to,
        after=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].received_at, page[-1].id) if len(rows) > limit else None
    return ComplaintPage(
        items=[
            ComplaintSummary(
                complaint_id=row.id,
                complaint_number=row.complaint_number,
                status=row.status,
                visible_state=row.visible_state,
                channel=row.channel,
                target=row.target,
                merchant_id=row.merchant_id,
                order_number=row.order_number,
                received_at=row.received_at,
                next_step=_next_step_view(row),
            )
            for row in page
        ],
        next_cursor=next_cursor,
    )


def encode_cursor(received_at: datetime, complaint_id: UUID) -> str:
    """An opaque cursor: the position after which the next page starts."""
    raw = orjson.dumps([received_at.isoformat(), str(complaint_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Reads a cursor made by `encode_cursor`; a damaged one is a 422 problem."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, complaint_id = orjson.loads(raw)
        position = (datetime.fromisoformat(at), UUID(complaint_id))
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise UnprocessableError("cursor is not one this service gave out", cursor=cursor) from exc
    if position[0].tzinfo is None:
        raise UnprocessableError("cursor is not one this service gave out", cursor=cursor)
    return position


async def supplement_complaint(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    supplement: ComplaintSupplement,
    principal: Principal,
    settings: Settings,
) -> ComplaintReceipt:
    """Adds what a `needs_info` complaint was asked for; complete, it proceeds (or is rejected).

    The checks run again on the whole complaint: a delivery date supplied may show the request
    is out of its window. What is still missing is asked for again, all at once.
    """
    row = await repository.get_complaint_for_update(session, complaint_id=complaint_id)
    missing_detail = f"complaint {complaint_id} not found"
    if row is None:
        raise NotFoundError(missing_detail)
    _ensure_visible(principal, row, missing_detail)
    if row.status != IntakeStatus.NEEDS_INFO:
        raise ConflictError(
            f"complaint {row.complaint_number} is {row.status}: only a complaint that needs "
            "information takes supplements",
            intake_status=row.status,
        )
    now = utcnow()
    order = supplement.order or (OrderRef.model_validate(row.order) if row.order else None)
    demands = (
        [Demand.model_validate(d.model_dump()) for d in supplement.demands]
        if supplement.demands is not None
        else [Demand.model_validate(d) for d in row.demands]
    )
    occurred_at = supplement.occurred_at or row.occurred_at
    attached = await complaint_evidence_refs(session, row.id)
    supplied_evidence = await lock_evidence_for_complaint(
        session,
        evidence_ids=supplement.evidence_ids,
        storefront_id=row.storefront_id,
        customer_id=row.customer_id,
        settings=settings,
    )
    evidence = [*attached, *supplied_evidence]
    limit = settings.evidence_max_per_complaint
    if len(evidence) > limit:
        raise EvidenceNotAttachableError(
            f"a complaint may carry at most {limit} evidence files; it has {len(attached)} "
            f"and {len(supplied_evidence)} more were named",
            limit=limit,
        )
    await attach_evidence(session, complaint_id=row.id, evidence=supplied_evidence)
    evidence_count = len(evidence)
    facts = complaint_facts(
        target=row.target,
        demands=demands,
        after_sales_reason=row.after_sales_reason,
        order=order,
        occurred_at=occurred_at,
        evidence_count=evidence_count,
    )
    outcome = run_initial_checks(facts, now=now, settings=settings)
    supplied = sorted(
        supplement.model_fields_set | ({"evidence_ids"} if supplement.evidence_ids else set())
    )
    description = row.description
    if supplement.note:
        description = f"{row.description}\n\n[{now.date().isoformat()}] {supplement.note}"
    info_due_at = (
        info_due(now, settings.info_answer_within_hours)
        if outcome.status is IntakeStatus.NEEDS_INFO
        else None
    )
    changes: dict[str, Any] = {
        "order": order.model_dump(mode="json") if order else None,
        "order_number": order.number if order else None,
        "delivered_at": order.delivered_at if order else None,
        "product": _first_item_as_product(order),
        "demands": [d.model_dump(mode="json") for d in demands],
        "occurred_at": occurred_at,
        "description": description,
        "status": outcome.status.value,
        "missing": [{"field": m.field, "reason": m.reason} for m in outcome.missing],
        "info_due_at": info_due_at,
        "rejection": outcome.rejection.model_dump() if outcome.rejection else None,
        "notes": list(row.notes) + list(outcome.notes),
        "visible_state": VISIBLE_BY_INTAKE_STATUS[outcome.status].value,
        "state_changed_at": now,
        "next_step": _next_step(outcome.status),
        "next_step_due_at": info_due_at
        if outcome.status is IntakeStatus.NEEDS_INFO
        else (row.respond_by if outcome.status is IntakeStatus.RECEIVED else None),
    }
    if outcome.status is IntakeStatus.RECEIVED:
        # The promise runs from when the complaint became complete, by its channel.
        changes["respond_by"] = first_response_due(
            row.channel,
            now,
            {c.value: seconds for c, seconds in settings.response_promise_seconds.items()},
            settings.default_response_promise_seconds,
        )
        changes["next_step_due_at"] = changes["respond_by"]
    await repository.update_complaint(session, row.id, changes)
    values = {**row._mapping, **changes}
    await _record_step(
        session,
        row.id,
        Step(
            "info_supplied",
            "您补充的信息已收到",
            "We received the information you supplied",
            {"supplied": supplied},
        ),
        at=now,
    )
    await _emit(
        session,
        ComplaintInfoSupplied(
            complaint_number=row.complaint_number,
            customer_id=row.customer_id,
            supplied=supplied,
            still_missing=[MissingItem(field=m.field, reason=m.reason) for m in outcome.missing],
            supplied_at=now,
        ),
        values,
    )
    if outcome.status is not IntakeStatus.NEEDS_INFO:
        await _record_step(
            session, row.id, intake_step(outcome.status, **_step_details(outcome)), at=now
        )
    await _emit_outcome(session, values, outcome, settings=settings, evidence=evidence)
    return _receipt(values, outcome)


async def withdraw_complaint(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    withdrawal: Withdrawal,
    principal: Principal,
) -> ComplaintView:
    """The customer withdraws an open complaint: closed for them, every service stops."""
    row = await repository.get_complaint_for_update(session, complaint_id=complaint_id)
    missing_detail = f"complaint {complaint_id} not found"
    if row is None:
        raise NotFoundError(missing_detail)
    _ensure_visible(principal, row, missing_detail)
    if row.status in FINAL_INTAKE_STATUSES or row.visible_state not in WITHDRAWABLE:
        raise ConflictError(
            f"complaint {row.complaint_number} is {row.visible_state} ({row.status}) and can "
            "no longer be withdrawn",
            visible_state=row.visible_state,
            intake_status=row.status,
        )
    now = utcnow()
    await repository.update_complaint(
        session,
        row.id,
        {
            "status": IntakeStatus.WITHDRAWN.value,
            "visible_state": VisibleState.CLOSED.value,
            "state_changed_at": now,
            "next_step": None,
            "next_step_due_at": None,
            "withdrawn_at": now,
        },
    )
    details = {"note": withdrawal.reason} if withdrawal.reason else {}
    await _record_step(session, row.id, intake_step(IntakeStatus.WITHDRAWN, **details), at=now)
    await _emit(
        session,
        ComplaintWithdrawn(
            complaint_number=row.complaint_number,
            customer_id=row.customer_id,
            merchant_id=row.merchant_id,
            reason=withdrawal.reason,
            withdrawn_at=now,
        ),
        dict(row._mapping),
    )
    return await get_complaint(session, complaint_id=row.id, principal=principal)


async def apply_event_to_view(session: AsyncSession, event: EventEnvelope[Any]) -> bool:
    """Applies another service's event to the customer's view; False if it changes nothing.

    Event types the view does not know are ignored, as are events of complaints intake does
    not have (another deployment's, or a test's).
    """
    change = view_change(event.event_type, event.payload.model_dump())
    if change is None:
        return False
    row = await repository.get_view_state_for_update(session, complaint_id=event.complaint_id)
    if row is None:
        return False
    await _record_step(session, row.id, change.step, at=event.occurred_at)
    current = ViewState(
        intake_status=row.status,
        visible_state=row.visible_state,
        changed_at=row.state_changed_at,
        next_step=row.next_step,
        next_step_due_at=row.next_step_due_at,
    )
    updated = apply_change(current, change, event.occurred_at)
    if updated is not None:
        await repository.update_complaint(
            session,
            row.id,
            {
                "visible_state": updated.visible_state,
                "state_changed_at": updated.changed_at,
                "next_step": updated.next_step,
                "next_step_due_at": updated.next_step_due_at,
            },
        )
    return True


async def flag_account(
    session: AsyncSession, *, customer_id: str, flag: AccountFlag, principal: Principal
) -> AccountFlagView:
    """Flags a customer's account: their new complaints carry it, remedies need approval."""
    values = {
        "customer_id": customer_id,
        "flag": flag.flag,
        "reason": flag.reason,
        "flagged_at": utcnow(),
        "flagged_by": principal.id,
    }
    await repository.set_account_flag(session, values)
    return AccountFlagView(**values)


async def unflag_account(session: AsyncSession, *, customer_id: str, flag: str) -> None:
    """Removes a flag from a customer's account."""
    if not await repository.remove_account_flag(session, customer_id=customer_id, flag=flag):
        raise NotFoundError(f"customer {customer_id} has no flag {flag}")


async def account_flags(session: AsyncSession, *, customer_id: str) -> list[AccountFlagView]:
    """The flags on a customer's account."""
    rows = await repository.list_account_flags(session, customer_id=customer_id)
    return [AccountFlagView(**row._mapping) for row in rows]


async def erase_customer(
    session: AsyncSession,
    *,
    customer_id: str,
    principal: Principal,
    correlation_id: str,
) -> ErasureReceipt:
    """Erases a customer's personal data from their complaints and deletes their evidence.

    The complaints stay, numbered and with their history, redacted: contact data gone, the
    customer's own words replaced, timeline quotes dropped. One `customer.erased` per
    complaint tells every other service to do the same for what it holds. A storefront
    erases what it posted; an admin, everything of the customer.
    """
    storefront_id = principal.storefront_id if principal.role is Role.STOREFRONT else None
    rows = await repository.complaints_of_customer_for_update(
        session, customer_id=customer_id, storefront_id=storefront_id
    )
    now = utcnow()
    redacted = [row for row in rows if row.erased_at is None]
    for row in redacted:
        await repository.update_complaint(
            session,
            row.id,
            {
                "contact": {"preferred_channel": row.preferred_contact_channel},
                "description": ERASED_TEXT,
                "erased_at": now,
            },
        )
        await _emit(
            session,
            CustomerErased(
                complaint_number=row.complaint_number, customer_id=customer_id, erased_at=now
            ),
            {"id": row.id, "correlation_id": correlation_id},
        )
    await repository.redact_timeline(session, complaint_ids=[row.id for row in rows])
    evidence_deleted = await _erase_evidence(session, customer_id)
    await repository.record_erasure(
        session,
        {
            "id": uuid.uuid4(),
            "customer_id": customer_id,
            "requested_by": principal.id,
            "complaints_redacted": len(redacted),
            "evidence_deleted": evidence_deleted,
            "erased_at": now,
        },
    )
    return ErasureReceipt(
        customer_id=customer_id,
        complaints_redacted=len(redacted),
        evidence_deleted=evidence_deleted,
        erased_at=now,
    )


async def _erase_evidence(session: AsyncSession, customer_id: str) -> int:
    return await erase_customer_evidence(session, evidence_storage(), customer_id)


# --- Evidence ----------------------------------------------------------------------------

# Problems for each refusal of the evidence rules.
_REFUSALS: dict[RefusalReason, type[ProblemError]] = {
    RefusalReason.EMPTY: UnprocessableError,
    RefusalReason.UNRECOGNISED: UnsupportedMediaTypeError,
    RefusalReason.NOT_FOR_KIND: UnsupportedMediaTypeError,
    RefusalReason.DECLARED_MISMATCH: UnsupportedMediaTypeError,
    RefusalReason.TOO_LARGE: ContentTooLargeError,
}
# Orphans deleted per maintenance pass (each file is a storage call while rows are locked).
ORPHAN_PURGE_BATCH = 200


class EvidenceNotAttachableError(UnprocessableError):
    """Some evidence a new complaint names cannot be attached; nothing was written."""


@dataclass(frozen=True)
class StoredEvidence:
    """Content that passed the checks and is in storage, waiting for its row."""

    evidence_id: UUID
    storage_key: str
    kind: EvidenceKind
    content: InspectedContent
    filename: str | None


def evidence_storage_key(evidence_id: UUID) -> str:
    """Where an evidence file is stored: made from its id only, never from caller input."""
    return f"evidence/{evidence_id.hex[:2]}/{evidence_id.hex}"


async def ensure_room_for_evidence(
    session: AsyncSession, *, storefront_id: str, customer_id: str, settings: Settings
) -> None:
    """Refuses an upload (409) while the customer has the most unattached uploads allowed."""
    waiting = await repository.count_unattached_evidence(
        session, storefront_id=storefront_id, customer_id=customer_id
    )
    limit = settings.evidence_max_unattached_per_customer
    if waiting >= limit:
        raise ConflictError(
            f"customer {customer_id} already has {waiting} uploads no complaint has taken, the "
            "most allowed; attach them to a complaint or wait until they expire",
            unattached=waiting,
            limit=limit,
        )


async def store_evidence_content(
    storage: EvidenceStorage,
    *,
    kind: EvidenceKind,
    declared_type: str | None,
    filename: str | None,
    chunks: AsyncIterator[bytes],
    settings: Settings,
) -> StoredEvidence:
    """Streams an upload into storage through the evidence checks (type, size, checksum).

    A refusal stops the stream at once and storage keeps nothing of it.
    """
    evidence_id = uuid.uuid4()
    key = evidence_storage_key(evidence_id)
    inspector = ContentInspector(
        kind=kind, declared_type=declared_type, limits=settings.evidence_limits
    )
    verdicts: list[InspectedContent] = []

    async def inspected() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            yield inspector.feed(chunk)
        # Decided before the stream ends, so storage never completes a refused file.
        verdicts.append(inspector.finish())

    try:
        await storage.put(key, inspected())
    except EvidenceRefused as refused:
        raise _REFUSALS[refused.reason](refused.detail, reason=refused.reason.value) from None
    except STORAGE_ERRORS as exc:
        logger.error("evidence storage failed: %r", exc)
        raise ServiceUnavailableError(
            "the evidence storage is unavailable right now; nothing was stored; retry shortly",
            headers={"Retry-After": "5"},
        ) from exc
    return StoredEvidence(evidence_id, key, kind, verdicts[0], sanitise_filename(filename))


async def record_evidence(
    session: AsyncSession, stored: StoredEvidence, *, storefront_id: str, customer_id: str
) -> EvidenceReceipt:
    """Writes the row of stored content (not attached to any complaint yet)."""
    uploaded_at = utcnow()
    await repository.insert_evidence(
        session,
        {
            "id": stored.evidence_id,
            "storefront_id": storefront_id,
            "customer_id": customer_id,
            "complaint_id": None,
            "kind": stored.kind.value,
            "media_type": stored.content.media_type.value,
            "size_bytes": stored.content.size_bytes,
            "sha256": stored.content.sha256,
            "storage_key": stored.storage_key,
            "original_filename": stored.filename,
            "uploaded_at": uploaded_at,
        },
    )
    return EvidenceReceipt(
        evidence_id=stored.evidence_id,
        kind=stored.kind.value,
        media_type=stored.content.media_type.value,
        size_bytes=stored.content.size_bytes,
        sha256=stored.content.sha256,
        uploaded_at=uploaded_at,
    )


async def discard_evidence_content(storage: EvidenceStorage, stored: StoredEvidence) -> None:
    """Deletes stored content whose row was not written (the orphan purge cannot see it)."""
    try:
        await storage.delete(stored.storage_key)
    except Exception:
        logger.exception("could not delete evidence content %s", stored.storage_key)


def _evidence_view(row: Any, principal: Principal) -> EvidenceView:
    # File names often name their owner: merchants do not see them.
    shows_name = principal.role in (Role.STOREFRONT, Role.ADMIN)
    return EvidenceView(
        evidence_id=row.id,
        complaint_id=row.complaint_id,
        kind=row.kind,
        media_type=row.media_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        filename=row.original_filename if shows_name else None,
        uploaded_at=row.uploaded_at,
        erased_at=row.erased_at,
    )


async def _visible_evidence(
    session: AsyncSession, *, evidence_id: UUID, principal: Principal
) -> Any:
    row = await repository.get_evidence(session, evidence_id=evidence_id)
    missing = f"evidence {evidence_id} not found"
    if row is None:
        raise NotFoundError(missing)
    ensure_visible(
        principal,
        missing,
        merchant_id=row.merchant_id,
        storefront_id=row.storefront_id,
        customer_id=row.customer_id,
    )
    return row


async def get_evidence(
    session: AsyncSession, *, evidence_id: UUID, principal: Principal
) -> EvidenceView:
    """An evidence file's record, if the caller's scope covers it (else the same 404 as none).

    The storefront that uploaded it (for the customer it names, if any) sees it; once attached,
    so does the complaint's merchant.
    """
    row = await _visible_evidence(session, evidence_id=evidence_id, principal=principal)
    return _evidence_view(row, principal)


async def open_evidence_content(
    session: AsyncSession,
    storage: EvidenceStorage,
    *,
    evidence_id: UUID,
    principal: Principal,
) -> tuple[EvidenceView, AsyncIterator[bytes]]:
    """An evidence file's record and its content as chunks, if the caller's scope covers it."""
    row = await _visible_evidence(session, evidence_id=evidence_id, principal=principal)
    if row.erased_at is not None:
        raise GoneError(f"the content of evidence {evidence_id} was erased")
    try:
        return _evidence_view(row, principal), await storage.open(row.storage_key)
    except ContentMissingError:
        logger.error("evidence %s has a row but no stored content", evidence_id)
        raise NotFoundError(f"the content of evidence {evidence_id} is missing") from None
    except STORAGE_ERRORS as exc:
        raise ServiceUnavailableError(
            "the evidence storage is unavailable right now; retry shortly",
            headers={"Retry-After": "5"},
        ) from exc


async def lock_evidence_for_complaint(
    session: AsyncSession,
    *,
    evidence_ids: Sequence[UUID],
    storefront_id: str | None,
    customer_id: str,
    settings: Settings,
) -> list[EvidenceRef]:
    """Locks the evidence a new complaint names, or refuses (422) naming every bad id.

    Called before the complaint is written, so a refusal leaves nothing behind.
    """
    limit = settings.evidence_max_per_complaint
    if len(evidence_ids) > limit:
        raise EvidenceNotAttachableError(
            f"a complaint may carry at most {limit} evidence files; {len(evidence_ids)} named",
            limit=limit,
        )
    rows = await repository.lock_evidence(session, evidence_ids=evidence_ids)
    found = {
        row.id: AttachmentCandidate(
            evidence_id=row.id,
            storefront_id=row.storefront_id,
            customer_id=row.customer_id,
            attached=row.complaint_id is not None,
            erased=row.erased_at is not None,
        )
        for row in rows
    }
    problem = attachment_problems(
        evidence_ids, found, storefront_id=storefront_id, customer_id=customer_id
    )
    if problem:
        raise EvidenceNotAttachableError(
            problem.detail, evidence_ids=[str(evidence_id) for evidence_id in problem.reasons]
        )
    by_id = {row.id: row for row in rows}
    return [
        EvidenceRef(
            id=evidence_id,
            kind=by_id[evidence_id].kind,
            media_type=by_id[evidence_id].media_type,
            sha256=by_id[evidence_id].sha256,
            size_bytes=by_id[evidence_id].size_bytes,
        )
        for evidence_id in evidence_ids
    ]


async def attach_evidence(
    session: AsyncSession, *, complaint_id: UUID, evidence: Sequence[EvidenceRef]
) -> None:
    """Attaches evidence locked by `lock_evidence_for_complaint` to the complaint just written."""
    await repository.attach_evidence(
        session, complaint_id=complaint_id, evidence_ids=[item.id for item in evidence]
    )


async def complaint_evidence_refs(session: AsyncSession, complaint_id: UUID) -> list[EvidenceRef]:
    """What complaint.received says of a complaint's evidence."""
    rows = await repository.list_complaint_evidence(session, complaint_id=complaint_id)
    return [
        EvidenceRef(
            id=row.id,
            kind=row.kind,
            media_type=row.media_type,
            sha256=row.sha256,
            size_bytes=row.size_bytes,
        )
        for row in rows
    ]


async def complaint_evidence(
    session: AsyncSession, *, complaint_id: UUID, principal: Principal
) -> list[EvidenceView]:
    """A complaint's evidence records (for callers who may see the complaint)."""
    rows = await repository.list_complaint_evidence(session, complaint_id=complaint_id)
    return [_evidence_view(row, principal) for row in rows]


async def purge_orphan_evidence(
    session: AsyncSession, storage: EvidenceStorage, *, now: datetime, max_age: timedelta
) -> int:
    """Deletes uploads no complaint took within `max_age`: the file first, then the row.

    A file deleted before a failed commit leaves a row the next pass deletes again; an upload
    being attached right now is locked and skipped.
    """
    rows = await repository.lock_unattached_evidence_before(
        session, before=now - max_age, limit=ORPHAN_PURGE_BATCH
    )
    for row in rows:
        await storage.delete(row.storage_key)
    return await repository.delete_evidence(session, evidence_ids=[row.id for row in rows])


async def erase_customer_evidence(
    session: AsyncSession, storage: EvidenceStorage, customer_id: str
) -> int:
    """Deletes a customer's evidence content from storage and marks the rows erased."""
    rows = await repository.lock_customer_evidence(session, customer_id=customer_id)
    for row in rows:
        await storage.delete(row.storage_key)
    await repository.mark_evidence_erased(
        session, evidence_ids=[row.id for row in rows], erased_at=utcnow()
    )
    return len(rows)
