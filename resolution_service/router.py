"""Resolution HTTP endpoints."""

from uuid import UUID

from fastapi import APIRouter

from resolution_service import service
from resolution_service.schemas import CaseView
from shared.errors import PROBLEM_JSON
from shared.web import SessionDep

router = APIRouter(prefix="/v1/complaints", tags=["cases"])


@router.get(
    "/{complaint_id}",
    response_model=CaseView,
    responses={404: {"description": "No case (yet)", "content": {PROBLEM_JSON: {}}}},
)
async def get_case(complaint_id: UUID, session: SessionDep) -> CaseView:
    """Shows the case of a complaint."""
    return await service.get_case(session, complaint_id=complaint_id)
