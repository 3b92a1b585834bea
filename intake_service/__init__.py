"""Intake (受理): accepts complaints from the storefront, numbers them, issues receipts."""
