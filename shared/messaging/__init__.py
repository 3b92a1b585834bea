"""Reliable messaging: outbox + relay, inbox-deduplicated consumers, dead letters."""

from shared.messaging.consumer import EventConsumer, Handler, RetryPolicy
from shared.messaging.dlq import ReplayResult, replay_dead_letters
from shared.messaging.inbox import claim_event, claim_events, inbox_table
from shared.messaging.kafka import create_consumer, create_producer, ensure_topics
from shared.messaging.outbox import Outbox, OutboxRelay, outbox_table

__all__ = [
    "EventConsumer",
    "Handler",
    "Outbox",
    "OutboxRelay",
    "ReplayResult",
    "RetryPolicy",
    "claim_event",
    "claim_events",
    "create_consumer",
    "create_producer",
    "ensure_topics",
    "inbox_table",
    "outbox_table",
    "replay_dead_letters",
]
