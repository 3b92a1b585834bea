"""Alembic environment of the resolution schema."""

from resolution_service.models import metadata
from shared.db.migrations import run_env

run_env(metadata)
