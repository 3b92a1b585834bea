"""Notification's rules, pure: who hears what, messages, preferences, retries, surveys."""
