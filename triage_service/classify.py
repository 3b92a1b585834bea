"""Classify complaints in bulk: `python -m triage_service.classify FILE.jsonl`.

Each input line is a JSON object with at least "text" (optionally "target", "demands" as
words or {"type", "amount"} objects, "channel", "order_amount"). Each output line is the
same object with category, subcategory, priority, confidence, reasons (and team,
responsibility, manual_review) added. A bad line is reported on stderr with its number and
skipped; the exit code is 1 at the end if any line was bad.
"""

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from triage_service.domain.classifier import (
    DEFAULT_MIN_CONFIDENCE,
    ExampleError,
    TriageModel,
    complaint_from_mapping,
    packaged_examples,
    train,
)
from triage_service.domain.decision import decide


def _amounts(data: Mapping[str, Any]) -> tuple[list[Decimal], Decimal | None]:
    demanded = []
    for demand in data.get("demands") or []:
        if isinstance(demand, Mapping) and demand.get("amount") is not None:
            demanded.append(_decimal(demand["amount"], "demand amount"))
    order = data.get("order_amount")
    return demanded, _decimal(order, "order_amount") if order is not None else None


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ExampleError(f"{what} {value!r} is not a number")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ExampleError(f"{what} {value!r} is not a number") from exc


def classify_line(line: str, *, model: TriageModel, min_confidence: float) -> dict[str, Any]:
    """The input object with triage's decision added; ExampleError when the line is bad."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ExampleError(f"not valid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise ExampleError("not a JSON object")
    complaint = complaint_from_mapping(data)
    demanded, order_amount = _amounts(data)
    decision = decide(
        complaint,
        model=model,
        demanded_amounts=demanded,
        order_amount=order_amount,
        min_confidence=min_confidence,
    )
    return {
        **data,
        "category": decision.category,
        "subcategory": decision.subcategory,
        "priority": decision.priority.value,
        "confidence": decision.confidence,
        "reasons": list(decision.reasons),
        "team": decision.team,
        "responsibility": decision.responsibility.value,
        "manual_review": decision.manual_review,
    }


def classify_lines(
    lines: Iterable[str],
    *,
    model: TriageModel,
    out: TextIO,
    err: TextIO,
    source: str,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> int:
    """Writes one classified line per good input line; returns how many lines were bad."""
    bad = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            result = classify_line(line, model=model, min_confidence=min_confidence)
        except ExampleError as exc:
            bad += 1
            err.write(f"{source}:{number}: {exc}\n")
            continue
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    return bad


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m triage_service.classify", description=__doc__.splitlines()[0]
    )
    parser.add_argument("file", type=Path, help="JSON lines, each with at least a text")
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=DEFAULT_MIN_CONFIDENCE,
        help="below this, a prediction is marked for manual review "
        f"(default {DEFAULT_MIN_CONFIDENCE})",
    )
    args = parser.parse_args(argv)
    try:
        lines = args.file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        sys.stderr.write(f"{args.file}: cannot read: {exc}\n")
        return 2
    model = train(packaged_examples())
    bad = classify_lines(
        lines,
        model=model,
        out=sys.stdout,
        err=sys.stderr,
        source=str(args.file),
        min_confidence=args.min_confidence,
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
