"""Triage rules as pure functions and small values: no database, no broker, no clock reads."""
