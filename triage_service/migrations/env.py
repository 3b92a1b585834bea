"""Alembic environment of the triage schema."""

from triage_service.models import metadata
from shared.db.migrations import run_env

run_env(metadata)
