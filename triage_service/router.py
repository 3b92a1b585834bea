"""Triage HTTP endpoints (thin: validation by schemas, rules in service)."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query

from shared.auth import Principal, Role, allow
from shared.errors import problem_responses
from shared.observability import bind_complaint
from shared.web import SessionDep
from triage_service import service
from triage_service.config import get_settings
from triage_service.schemas import RetrainReport, RetriageRequest, TriageQueue, TriageView

router = APIRouter(prefix="/v1/complaints", tags=["triage"])
queues_router = APIRouter(prefix="/v1/queues", tags=["queues"])
classifier_router = APIRouter(prefix="/v1/classifier", tags=["classifier"])

# Merchants see their own complaints; agents and supervisors their teams'; admins all.
Reader = Annotated[
    Principal, Depends(allow(Role.MERCHANT, Role.AGENT, Role.SUPERVISOR, Role.ADMIN))
]
# Re-triage and queues are the ops teams' work: agents and supervisors of the team, admins.
TeamMember = Annotated[Principal, Depends(allow(Role.AGENT, Role.SUPERVISOR, Role.ADMIN))]
# Retraining changes how every complaint is classified from then on.
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
Limit = Annotated[int, Query(ge=1, le=200, description="At most this many complaints.")]
TeamCode = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["logistics"])]


@router.get("/{complaint_id}", response_model=TriageView, responses=problem_responses(404))
async def get_triage(complaint_id: UUID, session: SessionDep, caller: Reader) -> TriageView:
    """Shows triage's view of a complaint with its reasons and SLA clocks (not triaged yet, or
    outside your scope: 404)."""
    return await service.get_triage(
        session, complaint_id=complaint_id, principal=caller, settings=get_settings()
    )


@router.post(
    "/{complaint_id}/retriage",
    response_model=TriageView,
    responses=problem_responses(404, 409, 422),
    summary="Change a complaint's category, subcategory or priority, with a reason",
)
async def retriage(
    complaint_id: UUID, body: RetriageRequest, session: SessionDep, caller: TeamMember
) -> TriageView:
    """Re-triages a complaint of your team: deadlines recomputed, complaint.retriaged emitted,
    the correction kept for the classifier. Repeating a request changes nothing."""
    bind_complaint(str(complaint_id))
    return await service.retriage(
        session,
        complaint_id=complaint_id,
        category=body.category,
        subcategory=body.subcategory,
        priority=body.priority,
        reason=body.reason,
        principal=caller,
        settings=get_settings(),
    )


# Declared before /{team}: "manual-triage" is not a team code (codes have no hyphen).
@queues_router.get("/manual-triage", response_model=TriageQueue, responses=problem_responses(404))
async def get_manual_triage_queue(
    session: SessionDep, caller: TeamMember, limit: Limit = 50
) -> TriageQueue:
    """Complaints the classifier was unsure of, soonest deadline first (intake review's)."""
    return await service.manual_triage_queue(
        session, principal=caller, limit=limit, settings=get_settings()
    )


@queues_router.get("/{team}", response_model=TriageQueue, responses=problem_responses(404))
async def get_team_queue(
    team: TeamCode, session: SessionDep, caller: TeamMember, limit: Limit = 50
) -> TriageQueue:
    """A team's open complaints, soonest deadline first, each on track, warning, breached or
    paused (another team's queue: 404)."""
    return await service.team_queue(
        session, team=team, principal=caller, limit=limit, settings=get_settings()
    )


@classifier_router.post("/retrain", response_model=RetrainReport)
async def retrain_classifier(session: SessionDep, caller: Admin) -> RetrainReport:
    """Trains this replica's classifier again with every stored correction (others retrain
    when they restart) and reports the corrections used and the new model version."""
    return await service.retrain_classifier(session)
