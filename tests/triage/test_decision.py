"""One decision from the parts: the team follows the tag unless the tag is unsure."""

from decimal import Decimal

from shared.events.vocabulary import Priority
from triage_service.domain.classifier import Complaint, TriageModel
from triage_service.domain.decision import decide
from triage_service.domain.responsibility import Responsibility


def test_a_sure_tag_routes_to_its_team(model: TriageModel):
    decision = decide(Complaint("快递显示签收了但我根本没收到，包裹丢了"), model=model)
    assert (decision.category, decision.team) == ("logistics", "logistics")
    assert decision.responsibility is Responsibility.LOGISTICS
    assert not decision.manual_review


def test_an_unsure_tag_goes_to_intake_review(model: TriageModel):
    decision = decide(Complaint("快递丢了"), model=model, min_confidence=1.0)
    assert decision.manual_review
    assert decision.team == "intake_review"
    assert "manual review" in decision.reasons[0]


def test_caller_counts_and_amounts_reach_the_priority(model: TriageModel):
    decision = decide(
        Complaint("质量太差了"),
        model=model,
        demanded_amounts=[Decimal(10)],
        order_amount=Decimal(7000),
        similar_complaints=0,
    )
    assert decision.priority is Priority.URGENT
    assert any(reason.startswith("large_sum: 7000") for reason in decision.reasons)
