"""Resolution HTTP endpoints: thin, each unwraps its request and calls one service function.

Agents and supervisors work cases of their teams (queues, detail with timeline, actions);
merchants see and answer only their own cases; storefronts carry the customer's decision on
an offer, notes and appeals. A refused transition answers 409 with the triggers allowed now.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from resolution_service import service
from resolution_service.config import get_settings
from resolution_service.domain.policy import Goodwill
from resolution_service.schemas import (
    AppealBody,
    ApprovalDecision,
    Assignment,
    CaseDetail,
    CaseView,
    ConsentView,
    CounterOffer,
    CustomerDecision,
    ExternalOutcomeBody,
    LedgerTotal,
    LedgerTotals,
    MediationOffer,
    Note,
    ProposalRequest,
    Queue,
    Referral,
    ReviewDecision,
    TaskReport,
    TaskView,
    TimelineLine,
    VerificationAnswer,
    VerificationRequestBody,
)
from shared.auth import Principal, Role, allow
from shared.errors import problem_responses
from shared.text import SingleLine
from shared.web import SessionDep

router = APIRouter(tags=["cases"])

# Merchants see their own cases; agents and supervisors their teams'; admins all.
Reader = Annotated[
    Principal, Depends(allow(Role.MERCHANT, Role.AGENT, Role.SUPERVISOR, Role.ADMIN))
]
Staff = Annotated[Principal, Depends(allow(Role.AGENT, Role.SUPERVISOR, Role.ADMIN))]
Supervisor = Annotated[Principal, Depends(allow(Role.SUPERVISOR, Role.ADMIN))]
Merchant = Annotated[Principal, Depends(allow(Role.MERCHANT, Role.ADMIN))]
Customer = Annotated[Principal, Depends(allow(Role.STOREFRONT, Role.ADMIN))]
Anyone = Annotated[
    Principal,
    Depends(allow(Role.STOREFRONT, Role.MERCHANT, Role.AGENT, Role.SUPERVISOR, Role.ADMIN)),
]
Executor = Annotated[
    Principal, Depends(allow(Role.MERCHANT, Role.AGENT, Role.SUPERVISOR, Role.ADMIN))
]
ACTION = problem_responses(404, 409, 422)
# Optional on every action: a retry with the same key (same caller, same request) answers the
# first response without acting again; another request under the key is 422.
IdempotencyKey = Annotated[
    SingleLine | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
]
CASE = "/v1/complaints/{complaint_id}"


def view(row: Row[Any]) -> CaseView:
    """A case row as the API shows it."""
    values = dict(row._mapping)
    return CaseView.model_validate({"case_id": values.pop("id"), **values})


async def once(
    session: AsyncSession,
    caller: Principal,
    key: str | None,
    action_name: str,
    complaint_id: UUID,
    body: BaseModel | None,
    action: Callable[[], Awaitable[Row[Any]]],
) -> CaseView:
    """Runs an action once per Idempotency-Key: a retry gets the stored first response."""
    if key is None:
        return view(await action())
    request = f"{action_name} {complaint_id} {body.model_dump_json() if body else ''}"
    stored = await service.claim_idempotency_key(
        session, caller=caller.id, key=key, request=request
    )
    if stored is not None:
        return CaseView.model_validate(stored)
    answer = view(await action())
    await service.remember_response(
        session, caller=caller.id, key=key, response=answer.model_dump(mode="json")
    )
    return answer


def views(rows: Sequence[Row[Any]]) -> list[CaseView]:
    """Several case rows as the API shows them."""
    return [view(row) for row in rows]


@router.get(CASE, response_model=CaseView, responses=problem_responses(404))
async def get_case(complaint_id: UUID, session: SessionDep, caller: Reader) -> CaseView:
    """Shows the case of a complaint (no case yet, or outside your scope: 404)."""
    return view(await service.get_case(session, complaint_id=complaint_id, principal=caller))


@router.get(f"{CASE}/detail", response_model=CaseDetail, responses=problem_responses(404))
async def get_case_detail(complaint_id: UUID, session: SessionDep, caller: Staff) -> CaseDetail:
    """The case with its timeline (who, when, which service), tasks and allowed triggers."""
    detail = await service.case_detail(
        session, complaint_id=complaint_id, principal=caller, settings=get_settings()
    )
    consent = detail["consent"]
    return CaseDetail(
        **view(detail["case"]).model_dump(),
        timeline=[TimelineLine.model_validate(dict(line._mapping)) for line in detail["timeline"]],
        tasks=[TaskView.model_validate(task) for task in detail["tasks"]],
        consent=None
        if consent is None
        else ConsentView(
            consented_at=consent.consented_at,
            channel=consent.channel,
            offer_hash=consent.offer_hash,
            summary=list(consent.summary),
        ),
        allowed_triggers=detail["allowed_triggers"],
    )


@router.post(f"{CASE}/assignment", response_model=CaseView, responses=ACTION)
async def assign(
    complaint_id: UUID,
    body: Assignment,
    session: SessionDep,
    caller: Staff,
    key: IdempotencyKey = None,
) -> CaseView:
    """Assigns (or reassigns) the case to an agent of its team; no name: the least loaded."""
    return await once(
        session,
        caller,
        key,
        "assign",
        complaint_id,
        body,
        lambda: service.assign(
            session,
            complaint_id=complaint_id,
            username=body.username,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/investigation", response_model=CaseView, responses=ACTION)
async def start_investigation(
    complaint_id: UUID, session: SessionDep, caller: Staff, key: IdempotencyKey = None
) -> CaseView:
    """The assigned agent starts investigating."""
    return await once(
        session,
        caller,
        key,
        "start_investigation",
        complaint_id,
        None,
        lambda: service.start_investigation(
            session, complaint_id=complaint_id, principal=caller, settings=get_settings()
        ),
    )


@router.post(f"{CASE}/notes", response_model=CaseView, responses=ACTION)
async def add_note(
    complaint_id: UUID, body: Note, session: SessionDep, caller: Anyone, key: IdempotencyKey = None
) -> CaseView:
    """Adds a note or evidence refs from the customer, merchant, carrier or agent."""
    return await once(
        session,
        caller,
        key,
        "add_note",
        complaint_id,
        body,
        lambda: service.add_note(
            session,
            complaint_id=complaint_id,
            principal=caller,
            source=body.source,
            note=body.note,
            evidence_refs=body.evidence_refs,
        ),
    )


@router.post(f"{CASE}/verification-request", response_model=CaseView, responses=ACTION)
async def request_verification(
    complaint_id: UUID,
    body: VerificationRequestBody,
    session: SessionDep,
    caller: Staff,
    key: IdempotencyKey = None,
) -> CaseView:
    """Asks the merchant to verify by a deadline in business time."""
    return await once(
        session,
        caller,
        key,
        "request_verification",
        complaint_id,
        body,
        lambda: service.request_verification(
            session,
            complaint_id=complaint_id,
            questions=body.questions,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/verification-answer", response_model=CaseView, responses=ACTION)
async def answer_verification(
    complaint_id: UUID,
    body: VerificationAnswer,
    session: SessionDep,
    caller: Merchant,
    key: IdempotencyKey = None,
) -> CaseView:
    """The merchant's answer: accept responsibility, or dispute it with evidence."""
    return await once(
        session,
        caller,
        key,
        "answer_verification",
        complaint_id,
        body,
        lambda: service.answer_verification(
            session,
            complaint_id=complaint_id,
            stance=body.stance.value,
            statement=body.statement,
            evidence_refs=body.evidence_refs,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/proposal", response_model=CaseView, responses=ACTION)
async def propose_remedy(
    complaint_id: UUID,
    body: ProposalRequest,
    session: SessionDep,
    caller: Staff,
    key: IdempotencyKey = None,
) -> CaseView:
    """Decides responsibility and proposes the compensation policy's remedies."""
    finding = (body.finding.responsibility.value, body.finding.reason) if body.finding else None
    goodwill = tuple(Goodwill(g.kind, g.reason, g.amount, g.valid_days) for g in body.goodwill)
    return await once(
        session,
        caller,
        key,
        "propose_remedy",
        complaint_id,
        body,
        lambda: service.propose_remedy(
            session,
            complaint_id=complaint_id,
            principal=caller,
            settings=get_settings(),
            finding=finding,
            goodwill=goodwill,
            carrier_id=body.carrier_id,
        ),
    )


@router.post(f"{CASE}/approval", response_model=CaseView, responses=ACTION)
async def decide_approval(
    complaint_id: UUID,
    body: ApprovalDecision,
    session: SessionDep,
    caller: Supervisor,
    key: IdempotencyKey = None,
) -> CaseView:
    """A supervisor approves the proposal, or rejects it with a reason."""
    return await once(
        session,
        caller,
        key,
        "decide_approval",
        complaint_id,
        body,
        lambda: service.approve(
            session,
            complaint_id=complaint_id,
            approved=body.approve,
            reason=body.reason,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/customer-decision", response_model=CaseView, responses=ACTION)
async def customer_decision(
    complaint_id: UUID,
    body: CustomerDecision,
    session: SessionDep,
    caller: Customer,
    key: IdempotencyKey = None,
) -> CaseView:
    """The customer accepts the offer (proof of consent kept) or rejects it."""
    return await once(
        session,
        caller,
        key,
        "customer_decision",
        complaint_id,
        body,
        lambda: service.customer_decides(
            session,
            complaint_id=complaint_id,
            accept=body.accept,
            offer_hash_seen=body.offer_hash,
            demanded_compensation=body.demanded_compensation,
            channel=body.channel,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/counter-offer", response_model=CaseView, responses=ACTION)
async def counter_offer(
    complaint_id: UUID,
    body: CounterOffer,
    session: SessionDep,
    caller: Staff,
    key: IdempotencyKey = None,
) -> CaseView:
    """A counter-offer after the customer rejected the offer."""
    return await once(
        session,
        caller,
        key,
        "counter_offer",
        complaint_id,
        body,
        lambda: service.counter(
            session,
            complaint_id=complaint_id,
            compensation=body.compensation,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/mediation", response_model=CaseView, responses=ACTION)
async def escalate_to_mediation(
    complaint_id: UUID, session: SessionDep, caller: Supervisor, key: IdempotencyKey = None
) -> CaseView:
    """A supervisor takes up a negotiation that used its rounds (调解)."""
    return await once(
        session,
        caller,
        key,
        "escalate_to_mediation",
        complaint_id,
        None,
        lambda: service.escalate_to_mediation(
            session, complaint_id=complaint_id, principal=caller, settings=get_settings()
        ),
    )


@router.post(f"{CASE}/mediation-offer", response_model=CaseView, responses=ACTION)
async def mediation_offer(
    complaint_id: UUID,
    body: MediationOffer,
    session: SessionDep,
    caller: Supervisor,
    key: IdempotencyKey = None,
) -> CaseView:
    """The mediating supervisor's offer."""
    return await once(
        session,
        caller,
        key,
        "mediation_offer",
        complaint_id,
        body,
        lambda: service.mediate(
            session,
            complaint_id=complaint_id,
            compensation=body.compensation,
            concessions=body.concessions,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/referral", response_model=CaseView, responses=ACTION)
async def refer(
    complaint_id: UUID,
    body: Referral,
    session: SessionDep,
    caller: Supervisor,
    key: IdempotencyKey = None,
) -> CaseView:
    """Refers the dispute to an outside body."""
    return await once(
        session,
        caller,
        key,
        "refer",
        complaint_id,
        body,
        lambda: service.refer(
            session,
            complaint_id=complaint_id,
            body=body.body.value,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/external-outcome", response_model=CaseView, responses=ACTION)
async def external_outcome(
    complaint_id: UUID,
    body: ExternalOutcomeBody,
    session: SessionDep,
    caller: Supervisor,
    key: IdempotencyKey = None,
) -> CaseView:
    """Records the outside body's outcome: settled or dismissed."""
    return await once(
        session,
        caller,
        key,
        "external_outcome",
        complaint_id,
        body,
        lambda: service.record_external_outcome(
            session,
            complaint_id=complaint_id,
            settled=body.outcome == "settled",
            summary=body.summary,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/tasks/{{task_key}}/reports", response_model=CaseView, responses=ACTION)
async def report_task(
    complaint_id: UUID,
    task_key: str,
    body: TaskReport,
    session: SessionDep,
    caller: Executor,
    key: IdempotencyKey = None,
) -> CaseView:
    """Progress on an execution task (merchant systems report theirs here)."""
    return await once(
        session,
        caller,
        key,
        f"report_task {task_key}",
        complaint_id,
        body,
        lambda: service.report_task(
            session,
            complaint_id=complaint_id,
            task_key=task_key,
            action=body.action,
            facts=body.facts,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/appeal", response_model=CaseView, responses=ACTION)
async def appeal(
    complaint_id: UUID,
    body: AppealBody,
    session: SessionDep,
    caller: Customer,
    key: IdempotencyKey = None,
) -> CaseView:
    """The customer appeals the decision (申诉) within the window."""
    return await once(
        session,
        caller,
        key,
        "appeal",
        complaint_id,
        body,
        lambda: service.appeal(
            session,
            complaint_id=complaint_id,
            reason=body.reason,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.post(f"{CASE}/review", response_model=CaseView, responses=ACTION)
async def start_review(
    complaint_id: UUID, session: SessionDep, caller: Supervisor, key: IdempotencyKey = None
) -> CaseView:
    """A supervisor other than the case's agent takes up the appeal."""
    return await once(
        session,
        caller,
        key,
        "start_review",
        complaint_id,
        None,
        lambda: service.start_review(
            session, complaint_id=complaint_id, principal=caller, settings=get_settings()
        ),
    )


@router.post(f"{CASE}/review-decision", response_model=CaseView, responses=ACTION)
async def decide_review(
    complaint_id: UUID,
    body: ReviewDecision,
    session: SessionDep,
    caller: Supervisor,
    key: IdempotencyKey = None,
) -> CaseView:
    """The review upholds the decision or reopens the case."""
    return await once(
        session,
        caller,
        key,
        "decide_review",
        complaint_id,
        body,
        lambda: service.decide_review(
            session,
            complaint_id=complaint_id,
            reopen=body.outcome == "reopened",
            reason=body.reason,
            principal=caller,
            settings=get_settings(),
        ),
    )


@router.get("/v1/queues/{team}", response_model=Queue, responses=problem_responses(404))
async def team_queue(team: str, session: SessionDep, caller: Staff) -> Queue:
    """A team's active cases, most urgent first (your teams only)."""
    rows = await service.team_queue(session, team=team, principal=caller)
    return Queue(team=team, items=views(rows))


@router.get("/v1/my-queue", response_model=Queue)
async def my_queue(session: SessionDep, caller: Staff) -> Queue:
    """Your own active cases, most urgent first."""
    rows = await service.agent_queue(session, principal=caller)
    return Queue(assignee_id=caller.id, items=views(rows))


@router.get("/v1/cases", response_model=Queue)
async def list_cases(
    session: SessionDep,
    caller: Reader,
    state: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Queue:
    """Cases you may see, most urgent first: merchants their own, staff their teams'."""
    rows = await service.list_cases(session, principal=caller, state=state, limit=limit)
    return Queue(items=views(rows))


@router.get("/v1/ledger", response_model=LedgerTotals, responses=problem_responses(404, 422))
async def ledger(
    session: SessionDep,
    caller: Reader,
    merchant_id: Annotated[str | None, Query(max_length=100)] = None,
    carrier_id: Annotated[str | None, Query(max_length=100)] = None,
) -> LedgerTotals:
    """What a merchant or a carrier bears in the liability ledger (merchants: their own)."""
    party, party_id, rows = await service.ledger_totals(
        session, merchant_id=merchant_id, carrier_id=carrier_id, principal=caller
    )
    return LedgerTotals(
        party=party,
        party_id=party_id,
        totals=[LedgerTotal(currency=r.currency, total=r.total, entries=r.entries) for r in rows],
    )
