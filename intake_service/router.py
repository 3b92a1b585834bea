"""Intake HTTP endpoints (thin: validation by schemas, rules in service)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from intake_service import service
from intake_service.config import EVIDENCE_PATH, get_settings
from intake_service.domain.evidence import EvidenceKind, MediaType, download_filename
from intake_service.schemas import (
    AccountFlag,
    AccountFlagView,
    ComplaintCreate,
    ComplaintPage,
    ComplaintReceipt,
    ComplaintSupplement,
    ComplaintView,
    ErasureReceipt,
    EvidenceReceipt,
    EvidenceView,
    Withdrawal,
)
from intake_service.storage import EvidenceStorage, evidence_storage
from intake_service.uploads import read_evidence_form
from shared.auth import Principal, Role, allow
from shared.auth.dependencies import ID_PATTERN
from shared.errors import ProblemError, UnprocessableError, problem_response, problem_responses
from shared.observability import bind_complaint, current_correlation_id, new_correlation_id
from shared.text import SingleLine
from shared.web import SessionDep

router = APIRouter(prefix="/v1/complaints", tags=["complaints"])
customers_router = APIRouter(prefix="/v1/customers", tags=["customers"])

# Storefronts post for their signed-in customers; the complaint is scoped to the storefront.
Writer = Annotated[Principal, Depends(allow(Role.STOREFRONT))]
# Intake knows no team before triage: agents and supervisors read triage and resolution.
Reader = Annotated[Principal, Depends(allow(Role.STOREFRONT, Role.MERCHANT, Role.ADMIN))]
# The customer acts through the storefront; ops admins may act for them.
CustomerActor = Annotated[Principal, Depends(allow(Role.STOREFRONT, Role.ADMIN))]
# Account flags are the risk team's: admins set and read them.
RiskOfficer = Annotated[Principal, Depends(allow(Role.ADMIN))]
CustomerId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")]
NUMBER_PATTERN = r"^[0-9]{6}-[0-9]{6,}$"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ComplaintReceipt,
    responses={
        200: {
            "model": ComplaintReceipt,
            "description": "A repeat of an open complaint (same customer, order and target): "
            "nothing new is created, the receipt is the open complaint's "
            "(`duplicate_of_open: true`).",
        },
        **problem_responses(409, 422, 429),
    },
    summary="Accept a complaint and return its receipt",
)
async def post_complaint(
    request: Request,
    body: ComplaintCreate,
    caller: Writer,
    idempotency_key: Annotated[
        SingleLine | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> Response:
    """Accepts a complaint; a retry with the same Idempotency-Key returns the first receipt."""
    # The busiest route opens its transaction itself: SessionDep's generator dependency (exit
    # stack, cancel scope) costs more CPU per request than this block. The edge is the same:
    # committed before the response is built, rolled back when the service raised (a taken
    # key is then answered by replay_idempotent_response).
    async with _transaction(request) as session:
        submission = await service.submit_complaint(
            session,
            request=body,
            idempotency_key=idempotency_key,
            caller=caller.id,
            storefront_id=caller.storefront_id,
            correlation_id=current_correlation_id() or new_correlation_id(),
            settings=get_settings(),
        )
        bind_complaint(submission.body.get("complaint_id"))
    return JSONResponse(submission.body, status_code=submission.status_code)


async def replay_idempotent_response(
    request: Request, error: service.IdempotencyKeyTakenError
) -> Response:
    """Answers a reused Idempotency-Key with the first response, once this request rolled back."""
    try:
        async with request.app.state.runtime.sessionmaker() as session, session.begin():
            submission = await service.replay_submission(
                session, caller=error.caller, key=error.key, fingerprint=error.fingerprint
            )
    except ProblemError as problem:
        return problem_response(
            problem.status,
            problem.title,
            problem.detail,
            type_slug=problem.type_slug,
            instance=request.url.path,
            **problem.extensions,
        )
    bind_complaint(submission.body.get("complaint_id"))
    return JSONResponse(
        submission.body,
        status_code=submission.status_code,
        headers={"Idempotent-Replayed": "true"},
    )


@router.get("/{complaint_id}", response_model=ComplaintView, responses=problem_responses(404))
async def get_complaint(complaint_id: UUID, session: SessionDep, caller: Reader) -> ComplaintView:
    """Shows intake's view of a complaint (not found, or outside your scope: 404)."""
    return await service.get_complaint(session, complaint_id=complaint_id, principal=caller)


@router.get(
    "/by-number/{complaint_number}",
    response_model=ComplaintView,
    responses=problem_responses(404),
    summary="Find a complaint by its number",
)
async def get_complaint_by_number(
    complaint_number: Annotated[str, Path(pattern=NUMBER_PATTERN, examples=["202405-000123"])],
    session: SessionDep,
    caller: Reader,
) -> ComplaintView:
    """The customer's view of a complaint found by its number (YYYYMM-NNNNNN)."""
    return await service.get_complaint_by_number(session, number=complaint_number, principal=caller)


@router.post(
    "/{complaint_id}/supplements",
    response_model=ComplaintReceipt,
    responses=problem_responses(404, 409, 422),
    summary="Supply the information a complaint was asked for",
)
async def post_supplement(
    complaint_id: UUID, body: ComplaintSupplement, session: SessionDep, caller: CustomerActor
) -> ComplaintReceipt:
    """Adds missing information; once complete the complaint proceeds (or is rejected)."""
    bind_complaint(str(complaint_id))
    return await service.supplement_complaint(
        session,
        complaint_id=complaint_id,
        supplement=body,
        principal=caller,
        settings=get_settings(),
    )


@router.post(
    "/{complaint_id}/withdrawal",
    response_model=ComplaintView,
    responses=problem_responses(404, 409, 422),
    summary="Withdraw a complaint",
)
async def post_withdrawal(
    complaint_id: UUID, body: Withdrawal, session: SessionDep, caller: CustomerActor
) -> ComplaintView:
    """The customer withdraws an open complaint; every service stops working on it."""
    bind_complaint(str(complaint_id))
    return await service.withdraw_complaint(
        session, complaint_id=complaint_id, withdrawal=body, principal=caller
    )


@customers_router.get(
    "/{customer_id}/complaints",
    response_model=ComplaintPage,
    responses=problem_responses(422),
    summary="A customer's complaint history (the CRM view)",
)
async def get_customer_history(
    customer_id: CustomerId,
    session: SessionDep,
    caller: Reader,
    visible_state: Annotated[
        str | None,
        Query(
            pattern=r"^(pending_acceptance|processing|awaiting_customer_confirmation|completed"
            r"|closed)$"
        ),
    ] = None,
    target: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
) -> ComplaintPage:
    """The customer's complaints within your scope, newest first, with filters and a cursor."""
    return await service.customer_history(
        session,
        customer_id=customer_id,
        principal=caller,
        visible_state=visible_state,
        target=target,
        received_from=received_from,
        received_to=received_to,
        cursor=cursor,
        limit=limit or get_settings().history_page_size,
    )


@customers_router.post(
    "/{customer_id}/erasure",
    response_model=ErasureReceipt,
    responses=problem_responses(422),
    summary="Erase a customer's personal data",
)
async def post_erasure(
    customer_id: CustomerId, session: SessionDep, caller: CustomerActor
) -> ErasureReceipt:
    """Removes the customer's personal data and evidence; complaints stay, redacted."""
    return await service.erase_customer(
        session,
        customer_id=customer_id,
        principal=caller,
        correlation_id=current_correlation_id() or new_correlation_id(),
    )


@customers_router.get(
    "/{customer_id}/flags",
    response_model=list[AccountFlagView],
    summary="The flags on a customer's account",
)
async def get_account_flags(
    customer_id: CustomerId, session: SessionDep, caller: RiskOfficer
) -> list[AccountFlagView]:
    """Lists the account's flags and why they were set."""
    return await service.account_flags(session, customer_id=customer_id)


@customers_router.put(
    "/{customer_id}/flags/{flag}",
    response_model=AccountFlagView,
    responses=problem_responses(422),
    summary="Flag a customer's account",
)
async def put_account_flag(
    customer_id: CustomerId,
    flag: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
    body: AccountFlag,
    session: SessionDep,
    caller: RiskOfficer,
) -> AccountFlagView:
    """Flags the account: its new complaints carry the flag and remedies need approval."""
    if body.flag != flag:
        raise UnprocessableError("the flag in the path and the body differ", flag=flag)
    return await service.flag_account(session, customer_id=customer_id, flag=body, principal=caller)


@customers_router.delete(
    "/{customer_id}/flags/{flag}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
    summary="Remove a flag from a customer's account",
)
async def delete_account_flag(
    customer_id: CustomerId,
    flag: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
    session: SessionDep,
    caller: RiskOfficer,
) -> Response:
    """Removes the flag; complaints already made keep the flag they were made with."""
    await service.unflag_account(session, customer_id=customer_id, flag=flag)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- Evidence ----------------------------------------------------------------------------


@asynccontextmanager
async def _evidence_storage_lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # The S3 client's connection pool closes with the app (a local directory has nothing).
    await evidence_storage().aclose()


evidence_router = APIRouter(
    prefix=EVIDENCE_PATH, tags=["evidence"], lifespan=_evidence_storage_lifespan
)
StorageDep = Annotated[EvidenceStorage, Depends(evidence_storage)]

_UPLOAD_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["kind", "customer_id", "file"],
                "properties": {
                    "kind": {
                        "type": "string",
                        "enum": [kind.value for kind in EvidenceKind],
                        "description": "What the file shows (before the file part).",
                    },
                    "customer_id": {
                        "type": "string",
                        "pattern": ID_PATTERN,
                        "description": "The customer it is for (before the file part); must "
                        "match X-Customer-ID when that is sent.",
                    },
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "The file, as the last part. Its type is read from its "
                        "content; a declared Content-Type must agree. Images and PDFs up to "
                        "10 MiB, videos up to 100 MiB by default.",
                    },
                },
            },
            "encoding": {"file": {"contentType": ", ".join(media.value for media in MediaType)}},
        }
    },
}


@asynccontextmanager
async def _transaction(request: Request) -> AsyncIterator[AsyncSession]:
    # A route's own commit edge: committed when the block ends, rolled back when it raises.
    # The upload's are short, around the stream, so no connection is held while a large file
    # arrives.
    async with request.app.state.runtime.sessionmaker() as session, session.begin():
        yield session


@evidence_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=EvidenceReceipt,
    responses=problem_responses(400, 409, 413, 415, 422),
    openapi_extra={"requestBody": _UPLOAD_REQUEST_BODY},
    summary="Upload a photo, video, screenshot, receipt or chat log for a customer",
)
async def post_evidence(request: Request, caller: Writer, storage: StorageDep) -> EvidenceReceipt:
    """Stores one file (multipart: kind, customer_id, then file) and returns its evidence id.

    Name the id in `evidence_ids` when posting the complaint; uploads never attached are
    deleted after a day. Refused files leave nothing stored.
    """
    settings = get_settings()
    form = await read_evidence_form(request)
    if caller.customer_id is not None and caller.customer_id != form.customer_id:
        raise UnprocessableError("customer_id differs from the X-Customer-ID header")
    storefront_id = str(caller.storefront_id)
    async with _transaction(request) as session:
        await service.ensure_room_for_evidence(
            session, storefront_id=storefront_id, customer_id=form.customer_id, settings=settings
        )
    stored = await service.store_evidence_content(
        storage,
        kind=form.kind,
        declared_type=form.declared_type,
        filename=form.filename,
        chunks=form.chunks,
        settings=settings,
    )
    try:
        async with _transaction(request) as session:
            return await service.record_evidence(
                session, stored, storefront_id=storefront_id, customer_id=form.customer_id
            )
    except BaseException:
        # The row was not written (or not committed): the file must not outlive it.
        await service.discard_evidence_content(storage, stored)
        raise


@evidence_router.get(
    "/{evidence_id}",
    response_model=EvidenceView,
    responses=problem_responses(404),
    summary="An evidence file's record",
)
async def get_evidence(evidence_id: UUID, session: SessionDep, caller: Reader) -> EvidenceView:
    """The uploading storefront, the merchant of the complaint it is attached to, and admins."""
    return await service.get_evidence(session, evidence_id=evidence_id, principal=caller)


@evidence_router.get(
    "/{evidence_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file as uploaded",
            "content": {
                media.value: {"schema": {"type": "string", "format": "binary"}}
                for media in MediaType
            },
        },
        **problem_responses(404, 410),
    },
    summary="Download an evidence file",
)
async def get_evidence_content(
    evidence_id: UUID, session: SessionDep, caller: Reader, storage: StorageDep
) -> StreamingResponse:
    """Streams the file to the same callers who may see its record (others: 404)."""
    view, chunks = await service.open_evidence_content(
        session, storage, evidence_id=evidence_id, principal=caller
    )
    return StreamingResponse(
        chunks,
        media_type=view.media_type,
        headers={
            "Content-Length": str(view.size_bytes),
            "Content-Disposition": (
                f'attachment; filename="{download_filename(view.evidence_id, view.media_type)}"'
            ),
            "ETag": f'"{view.sha256}"',
            # Served as what it is and never run: no sniffing, no scripts in a sandbox.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
        },
    )
