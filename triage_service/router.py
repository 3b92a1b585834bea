"""Triage HTTP endpoints."""

from uuid import UUID

from fastapi import APIRouter

from shared.errors import PROBLEM_JSON
from shared.web import SessionDep
from triage_service import service
from triage_service.schemas import TriageView

router = APIRouter(prefix="/v1/complaints", tags=["triage"])


@router.get(
    "/{complaint_id}",
    response_model=TriageView,
    responses={404: {"description": "Not triaged (yet)", "content": {PROBLEM_JSON: {}}}},
)
async def get_triage(complaint_id: UUID, session: SessionDep) -> TriageView:
    """Shows triage's view of a complaint."""
    return await service.get_triage(session, complaint_id=complaint_id)
