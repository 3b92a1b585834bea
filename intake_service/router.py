"""Intake HTTP endpoints (thin: validation by schemas, rules in service)."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.responses import JSONResponse

from intake_service import service
from intake_service.config import get_settings
from intake_service.schemas import ComplaintCreate, ComplaintReceipt, ComplaintView
from shared.auth import Principal, Role, allow
from shared.errors import ProblemError, problem_response, problem_responses
from shared.observability import bind_complaint, current_correlation_id, new_correlation_id
from shared.text import SingleLine
from shared.web import SessionDep

router = APIRouter(prefix="/v1/complaints", tags=["complaints"])

# Storefronts post for their signed-in customers; the complaint is scoped to the storefront.
Writer = Annotated[Principal, Depends(allow(Role.STOREFRONT))]
# Intake knows no team before triage: agents and supervisors read triage and resolution.
Reader = Annotated[Principal, Depends(allow(Role.STOREFRONT, Role.MERCHANT, Role.ADMIN))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ComplaintReceipt,
    responses=problem_responses(409, 422),
    summary="Accept a complaint and return its receipt",
)
async def post_complaint(
    body: ComplaintCreate,
    session: SessionDep,
    caller: Writer,
    idempotency_key: Annotated[
        SingleLine | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> Response:
    """Accepts a complaint; a retry with the same Idempotency-Key returns the first receipt."""
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
