"""Resolution's rules, pure: the case lifecycle, remedies and the compensation policy,
liability, negotiation and consent, execution tasks, merchant verification, closure and
appeal. No I/O here: `service.py` feeds them facts and acts on their decisions; `config.py`
supplies their numbers.
"""
