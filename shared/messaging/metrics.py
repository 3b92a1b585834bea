"""Prometheus metrics of the messaging layer."""

from prometheus_client import Counter, Gauge

OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published to Kafka", ["schema"])
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published", ["schema"])
RELAY_FAILURES = Counter("outbox_relay_failures_total", "Failed relay attempts", ["schema"])
EVENTS_HANDLED = Counter(
    "events_handled_total", "Events handled by a consumer", ["consumer", "event_type", "outcome"]
)
EVENTS_DEAD_LETTERED = Counter(
    "events_dead_lettered_total", "Messages sent to a dead-letter topic", ["consumer", "topic"]
)
CONSUMER_LAG = Gauge(
    "consumer_lag", "Messages behind the partition end", ["consumer", "topic", "partition"]
)
PRODUCER_RESETS = Counter(
    "kafka_producer_resets_total", "Producers replaced after a send failure", ["producer"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds",
    "Age of the oldest outbox row not yet published (0 when none)",
    ["schema"],
)
BACKGROUND_TASK_RESTARTS = Counter(
    "background_task_restarts_total", "Background tasks restarted after dying", ["task"]
)
