"""Alembic environment of the notification schema."""

from notification_service.models import metadata
from shared.db.migrations import run_env

run_env(metadata)
