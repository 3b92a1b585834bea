"""Resolution HTTP endpoints."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends

from resolution_service import service
from resolution_service.schemas import CaseView
from shared.auth import Principal, Role, allow
from shared.errors import problem_responses
from shared.web import SessionDep

router = APIRouter(prefix="/v1/complaints", tags=["cases"])

# Merchants see their own cases; agents and supervisors their teams'; admins all.
Reader = Annotated[
    Principal, Depends(allow(Role.MERCHANT, Role.AGENT, Role.SUPERVISOR, Role.ADMIN))
]


@router.get("/{complaint_id}", response_model=CaseView, responses=problem_responses(404))
async def get_case(complaint_id: UUID, session: SessionDep, caller: Reader) -> CaseView:
    """Shows the case of a complaint (no case yet, or outside your scope: 404)."""
    return await service.get_case(session, complaint_id=complaint_id, principal=caller)
