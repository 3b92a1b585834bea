"""Callbacks that run after a session commits (e.g. waking the outbox relay)."""

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

_AFTER_COMMIT_KEY = "after_commit_callbacks"
_installed = False


def call_after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Registers a callback to run once the session's current transaction commits."""
    session.info.setdefault(_AFTER_COMMIT_KEY, set()).add(callback)


def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT_KEY, ()):
        callback()


def _drop_after_rollback(session: Session, *_: Any) -> None:
    session.info.pop(_AFTER_COMMIT_KEY, None)


def install_after_commit_hooks() -> None:
    """Installs the session listeners once per process."""
    global _installed
    if _installed:
        return
    event.listen(Session, "after_commit", _run_after_commit)
    event.listen(Session, "after_soft_rollback", _drop_after_rollback)
    _installed = True
