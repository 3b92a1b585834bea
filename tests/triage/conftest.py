"""Triage's pure tests: one model trained from the packaged split, shared by the session."""

from pathlib import Path

import pytest

from triage_service.domain.classifier import TriageModel, packaged_examples, train

DATA = Path(__file__).resolve().parents[1] / "data" / "triage"


@pytest.fixture(scope="session")
def model() -> TriageModel:
    """The model the service would train at start-up."""
    return train(packaged_examples())
