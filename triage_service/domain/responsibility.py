"""Responsibility hypothesis (责任判定): who presumably answers for a complaint, and why.

The tag gives the default (taxonomy: a lost parcel is the carrier's, a refund the
merchant's); what the customer writes can move it: "不想要了" or "changed my mind" points to
the customer, "台风" or "lockdown" to force majeure, "crushed box" to the carrier. Among
such signals the one with the highest precedence in `signals.json` wins. It stays a
hypothesis: investigation confirms or corrects it.
"""

from dataclasses import dataclass

from triage_service.domain.signals import SignalReader, default_reader
from triage_service.domain.taxonomy import Responsibility, Taxonomy, load_taxonomy

__all__ = ["Responsibility", "ResponsibilityHypothesis", "hypothesize_responsibility"]


@dataclass(frozen=True)
class ResponsibilityHypothesis:
    """The presumed responsible party, the tag's default, and the reasons."""

    party: Responsibility
    default: Responsibility
    reasons: tuple[str, ...]


def hypothesize_responsibility(
    text: str,
    *,
    subcategory: str | None,
    reader: SignalReader | None = None,
    taxonomy: Taxonomy | None = None,
) -> ResponsibilityHypothesis:
    """The first guess at who is responsible: the tag's default unless the text says otherwise."""
    reader = reader or default_reader()
    taxonomy = taxonomy or load_taxonomy()
    if subcategory is not None and subcategory in taxonomy.subcategory_codes:
        default = taxonomy.subcategory(subcategory).responsibility
        reasons = [f"default for {subcategory}: {default}"]
    else:
        default = Responsibility.UNDETERMINED
        reasons = [f"no default for subcategory {subcategory!r}: {default}"]

    candidates = []
    for hit in reader.read(text):
        signal = reader.lexicon.signal(hit.code)
        if signal.responsibility is not None:
            candidates.append((signal.precedence, signal.responsibility, hit, signal.label_en))
    if not candidates:
        return ResponsibilityHypothesis(party=default, default=default, reasons=tuple(reasons))

    for _, party, hit, label in candidates:
        reasons.append(f"{hit.code}: {label} ({hit.evidence}) -> {party}")
    # Stable on ties: the signal listed first in the lexicon wins among equals.
    _, party, _, _ = max(candidates, key=lambda candidate: candidate[0])
    return ResponsibilityHypothesis(party=party, default=default, reasons=tuple(reasons))
