"""The batch command: a decision added to every good line, bad lines named on stderr."""

import io
import json
from pathlib import Path

import pytest

from tests.triage.conftest import DATA
from triage_service import classify, classify_report
from triage_service.domain.classifier import TriageModel, load_examples, packaged_examples

GOOD = {"text": "快递三天了还没到，急用", "channel": "app"}
URGENT = {
    "text": "Sorry to bother you, my kid got burned by the heater",
    "channel": "email",
    "demands": [{"type": "compensation", "amount": 200}],
}


def run(lines: list[str], model: TriageModel) -> tuple[list[dict[str, object]], str, int]:
    out, err = io.StringIO(), io.StringIO()
    bad = classify.classify_lines(lines, model=model, out=out, err=err, source="in.jsonl")
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue(), bad


def test_adds_the_decision_and_keeps_the_input(model: TriageModel):
    [result], err, bad = run([json.dumps(GOOD, ensure_ascii=False)], model)
    assert (bad, err) == (0, "")
    assert result["text"] == GOOD["text"]
    assert result["channel"] == "app"
    assert (result["category"], result["subcategory"]) == ("logistics", "delayed")
    assert result["priority"] == "general"
    assert 0 < float(str(result["confidence"])) <= 1
    assert isinstance(result["reasons"], list)
    assert result["reasons"]


def test_a_polite_burn_is_urgent(model: TriageModel):
    [result], _, _ = run([json.dumps(URGENT)], model)
    assert result["priority"] == "urgent"


def test_a_demanded_amount_counts(model: TriageModel):
    line = {"text": "退钱", "demands": [{"type": "refund", "amount": "6000"}]}
    [result], _, _ = run([json.dumps(line, ensure_ascii=False)], model)
    assert result["priority"] == "urgent"


def test_bad_lines_are_reported_with_their_number_and_skipped(model: TriageModel):
    lines = [
        json.dumps(GOOD, ensure_ascii=False),
        "not json",
        json.dumps({"text": ""}),
        "",
        json.dumps([1, 2]),
        json.dumps({"text": "退钱", "demands": [{"type": "refund", "amount": "lots"}]}),
        json.dumps(URGENT),
    ]
    results, err, bad = run(lines, model)
    assert bad == 4
    assert len(results) == 2
    assert err.splitlines() == [
        "in.jsonl:2: not valid JSON: Expecting value at column 1",
        "in.jsonl:3: 'text' must be a non-empty string",
        "in.jsonl:5: not a JSON object",
        "in.jsonl:6: demand amount 'lots' is not a number",
    ]


def test_the_command_exits_1_after_a_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(GOOD, ensure_ascii=False) + "\n{broken\n", encoding="utf-8")
    assert classify.main([str(source)]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1
    assert f"{source}:2: not valid JSON" in captured.err


def test_the_command_exits_2_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert classify.main([str(tmp_path / "absent.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_report_measures_the_held_out_split():
    report = classify_report.evaluate(packaged_examples(), load_examples(DATA / "test.jsonl"))
    figures = report.figures
    assert figures["test_size"] == sum(sum(row) for row in figures["confusion_matrix"])
    assert 0 <= figures["level2_accuracy"] <= figures["level1_accuracy"] <= 1
    assert figures["urgent_total"] > 0
    assert "level-1 confusion matrix" in report.text()
