"""Intake's rules, pure: numbering, promises, after-sales windows, completeness, scope,
duplicates, evidence and the customer's view. No I/O here: `service.py` feeds them facts and
acts on their decisions; `config.py` supplies their numbers.
"""
