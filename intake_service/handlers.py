"""Intake consumes no events yet: complaints enter over HTTP only."""

HANDLERS: dict[str, object] = {}
