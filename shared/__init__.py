"""Common ground for the four services: event contracts, messaging, database and HTTP helpers."""
