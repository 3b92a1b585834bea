"""The docs' lifecycle diagram is generated from the table and never drifts from it."""

import subprocess
import sys
from pathlib import Path

import pytest

from resolution_service import diagram
from resolution_service.domain.lifecycle import AMBIENT, FLOW, GUARDS, CaseState

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_docs_match_the_table():
    # The same command a developer runs; a failure means: run it and commit the docs.
    result = subprocess.run(
        [sys.executable, "-m", "resolution_service.diagram", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_diagram_draws_every_flow_row_with_its_guards():
    mermaid = diagram.render_mermaid()
    assert mermaid.startswith("stateDiagram-v2\n    [*] --> open : complaint.triaged")
    for row in FLOW:
        guards = ", ".join(guard.name for guard in row.transition.guards)
        label = f"{row.trigger} [{guards}]" if guards else str(row.trigger)
        assert f"    {row.state} --> {row.transition.next_state} : {label}\n" in mermaid + "\n"
    # Mermaid reads a colon or semicolon in a label as syntax.
    for line in mermaid.splitlines():
        _, _, label = line.partition(" : ")
        assert ":" not in label
        assert ";" not in label


def test_the_section_lists_shared_triggers_guards_and_visible_states():
    section = diagram.render_section()
    for rule in AMBIENT:
        assert f"| `{rule.trigger}` |" in section
    for guard in GUARDS:
        assert f"| `{guard.name}` | {guard.description} |" in section
    for state in CaseState:
        assert f"| `{state}` |" in section


def test_check_reports_a_stale_page_and_writing_fixes_it(tmp_path: Path):
    page = tmp_path / "lifecycle.md"
    page.write_text(f"# Title\n\nkept\n\n{diagram.BEGIN}\nold diagram\n{diagram.END}\ntail\n")
    assert diagram.main(["--check", "--path", str(page)]) == 1
    assert "old diagram" in page.read_text()
    assert diagram.main(["--path", str(page)]) == 0
    assert diagram.main(["--check", "--path", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# Title\n\nkept\n\n")
    assert text.endswith(f"{diagram.END}\ntail\n")
    assert "old diagram" not in text


def test_a_page_without_markers_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    page = tmp_path / "lifecycle.md"
    page.write_text("# no markers\n")
    assert diagram.main(["--path", str(page)]) == 2
    assert "no generated section" in capsys.readouterr().err


def test_a_missing_page_is_created_and_then_checks_clean(tmp_path: Path):
    page = tmp_path / "new.md"
    assert diagram.main(["--check", "--path", str(page)]) == 1
    assert diagram.main(["--path", str(page)]) == 0
    assert diagram.main(["--check", "--path", str(page)]) == 0
