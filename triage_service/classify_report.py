"""How well triage classifies: `python -m triage_service.classify_report` (`make classify-report`).

Trains on the packaged training split, decides every complaint of the held-out test split
(never used for training or tuning), prints level-1 and level-2 accuracy, urgent recall, the
false-urgent rate and the level-1 confusion matrix, and writes the same as JSON.
"""

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.events.vocabulary import Priority
from triage_service.domain.classifier import (
    DEFAULT_MIN_CONFIDENCE,
    LabelledComplaint,
    load_examples,
    packaged_examples,
    train,
)
from triage_service.domain.decision import TriageDecision, decide
from triage_service.domain.taxonomy import Taxonomy, load_taxonomy

DEFAULT_TEST = Path("tests/data/triage/test.jsonl")
DEFAULT_OUTPUT = Path("bench-results/classify-report.json")


@dataclass(frozen=True)
class Report:
    """The figures of one evaluation, ready to print or store."""

    figures: dict[str, Any]

    def text(self) -> str:
        """A plain-text rendering for the terminal."""
        f = self.figures
        lines = [
            f"triage classifier on {f['test_size']} held-out complaints "
            f"(trained on {f['train_size']}, taxonomy v{f['taxonomy_version']})",
            f"  level-1 accuracy      {f['level1_accuracy']:.3f}",
            f"  level-2 accuracy      {f['level2_accuracy']:.3f}",
            f"  urgent recall         {_ratio(f['urgent_recall'])}"
            f"  ({f['urgent_found']}/{f['urgent_total']})",
            f"  false-urgent rate     {_ratio(f['false_urgent_rate'])}"
            f"  ({f['false_urgent']}/{f['not_urgent_total']})",
            f"  manual review         {f['manual_review_rate']:.3f}"
            f"  (confidence below {f['min_confidence']})",
            f"  training time         {f['training_seconds']:.3f} s",
            f"  prediction time       {f['prediction_ms_per_complaint']:.2f} ms per complaint",
            "",
            "level-1 confusion matrix (rows: true, columns: predicted)",
        ]
        codes = f["confusion_labels"]
        width = max(len(code) for code in codes)
        header = " " * (width + 2) + " ".join(f"{index:>3}" for index in range(len(codes)))
        lines.append(header)
        for index, (code, row) in enumerate(zip(codes, f["confusion_matrix"], strict=True)):
            cells = " ".join(f"{count:>3}" if count else "  ." for count in row)
            lines.append(f"{code:<{width}} {index:>1} {cells}")
        return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def evaluate(
    train_examples: list[LabelledComplaint],
    test_examples: list[LabelledComplaint],
    *,
    taxonomy: Taxonomy | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> Report:
    """Trains on one set, decides the other, and measures the decisions against the labels."""
    taxonomy = taxonomy or load_taxonomy()
    started = time.perf_counter()
    model = train(train_examples, taxonomy=taxonomy)
    training_seconds = time.perf_counter() - started

    started = time.perf_counter()
    decisions: list[TriageDecision] = [
        decide(example.complaint, model=model, min_confidence=min_confidence)
        for example in test_examples
    ]
    prediction_ms = (time.perf_counter() - started) * 1000 / max(len(test_examples), 1)

    pairs = list(zip(test_examples, decisions, strict=True))
    level2 = sum(d.subcategory == e.subcategory for e, d in pairs)
    level1 = sum(d.category == taxonomy.category_of(e.subcategory) for e, d in pairs)
    urgent = [d for e, d in pairs if e.priority == Priority.URGENT]
    not_urgent = [d for e, d in pairs if e.priority is not None and e.priority != Priority.URGENT]
    urgent_found = sum(d.priority is Priority.URGENT for d in urgent)
    false_urgent = sum(d.priority is Priority.URGENT for d in not_urgent)

    codes = list(taxonomy.category_codes)
    confusion = Counter((taxonomy.category_of(e.subcategory), d.category) for e, d in pairs)
    size = max(len(test_examples), 1)
    figures: dict[str, Any] = {
        "taxonomy_version": taxonomy.version,
        "train_size": len(train_examples),
        "test_size": len(test_examples),
        "level1_accuracy": round(level1 / size, 4),
        "level2_accuracy": round(level2 / size, 4),
        "urgent_total": len(urgent),
        "urgent_found": urgent_found,
        "urgent_recall": round(urgent_found / len(urgent), 4) if urgent else None,
        "not_urgent_total": len(not_urgent),
        "false_urgent": false_urgent,
        "false_urgent_rate": round(false_urgent / len(not_urgent), 4) if not_urgent else None,
        "min_confidence": min_confidence,
        "manual_review_rate": round(sum(d.manual_review for d in decisions) / size, 4),
        "training_seconds": round(training_seconds, 4),
        "prediction_ms_per_complaint": round(prediction_ms, 3),
        "confusion_labels": codes,
        "confusion_matrix": [[confusion[(true, guess)] for guess in codes] for true in codes],
    }
    return Report(figures)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m triage_service.classify_report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--test", type=Path, default=DEFAULT_TEST, help="held-out JSON lines")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON report path")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    args = parser.parse_args(argv)
    taxonomy = load_taxonomy()
    report = evaluate(
        packaged_examples(),
        load_examples(args.test, taxonomy=taxonomy),
        taxonomy=taxonomy,
        min_confidence=args.min_confidence,
    )
    sys.stdout.write(report.text() + "\n")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report.figures, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"\nwritten to {args.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
