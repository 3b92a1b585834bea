"""Triage HTTP endpoints."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends

from shared.auth import Principal, Role, allow
from shared.errors import problem_responses
from shared.web import SessionDep
from triage_service import service
from triage_service.schemas import TriageView

router = APIRouter(prefix="/v1/complaints", tags=["triage"])

# Merchants see their own complaints; agents and supervisors their teams'; admins all.
Reader = Annotated[
    Principal, Depends(allow(Role.MERCHANT, Role.AGENT, Role.SUPERVISOR, Role.ADMIN))
]


@router.get("/{complaint_id}", response_model=TriageView, responses=problem_responses(404))
async def get_triage(complaint_id: UUID, session: SessionDep, caller: Reader) -> TriageView:
    """Shows triage's view of a complaint (not triaged yet, or outside your scope: 404)."""
    return await service.get_triage(session, complaint_id=complaint_id, principal=caller)
