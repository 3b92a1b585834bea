"""Triage (分类/优先级/分派): category, priority, owning team and SLA deadline."""
