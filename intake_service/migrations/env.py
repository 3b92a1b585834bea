"""Alembic environment of the intake schema."""

from intake_service.models import metadata
from shared.db.migrations import run_env

run_env(metadata)
