"""Alembic environment of the triage schema."""

from shared.db.migrations import run_env
from triage_service.models import metadata

run_env(metadata)
