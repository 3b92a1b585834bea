"""One triage decision from the parts: tag, owning team, priority, responsibility, reasons."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from shared.events.vocabulary import Priority
from triage_service.domain.classifier import (
    DEFAULT_MIN_CONFIDENCE,
    Complaint,
    Prediction,
    TriageModel,
)
from triage_service.domain.priority import PriorityDecision, PriorityRules, assess_priority
from triage_service.domain.responsibility import (
    Responsibility,
    ResponsibilityHypothesis,
    hypothesize_responsibility,
)


@dataclass(frozen=True)
class TriageDecision:
    """Everything triage decides about one complaint, with the reasons for each part."""

    category: str
    subcategory: str
    team: str
    priority: Priority
    confidence: float
    manual_review: bool
    responsibility: Responsibility
    reasons: tuple[str, ...]
    prediction: Prediction
    priority_decision: PriorityDecision
    responsibility_hypothesis: ResponsibilityHypothesis


def decide(
    complaint: Complaint,
    *,
    model: TriageModel,
    demanded_amounts: Iterable[Decimal] = (),
    order_amount: Decimal | None = None,
    similar_complaints: int = 0,
    previous_complaints: int = 0,
    rules: PriorityRules | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> TriageDecision:
    """Classifies, prioritises and presumes responsibility for one complaint."""
    prediction = model.predict(complaint, min_confidence=min_confidence)
    priority = assess_priority(
        complaint.text,
        subcategory=prediction.subcategory,
        demanded_amounts=demanded_amounts,
        order_amount=order_amount,
        similar_complaints=similar_complaints,
        previous_complaints=previous_complaints,
        rules=rules,
        taxonomy=model.taxonomy,
    )
    responsibility = hypothesize_responsibility(
        complaint.text, subcategory=prediction.subcategory, taxonomy=model.taxonomy
    )
    # An unsure tag is not trusted to route: people in intake review look at it first.
    team = (
        model.taxonomy.fallback_team
        if prediction.manual_review
        else model.taxonomy.team_for(prediction.category)
    )
    classification_reason = (
        f"subcategory {prediction.subcategory} at {prediction.confidence:.2f}"
        + (f" from {', '.join(prediction.signals)}" if prediction.signals else "")
        + (f"; below {min_confidence:.2f}: manual review" if prediction.manual_review else "")
    )
    return TriageDecision(
        category=prediction.category,
        subcategory=prediction.subcategory,
        team=team,
        priority=priority.priority,
        confidence=prediction.confidence,
        manual_review=prediction.manual_review,
        responsibility=responsibility.party,
        reasons=(classification_reason, *priority.reasons, *responsibility.reasons),
        prediction=prediction,
        priority_decision=priority,
        responsibility_hypothesis=responsibility,
    )
