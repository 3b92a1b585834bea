"""Every Kafka topic of the platform, in one place."""

from enum import StrEnum


class Topic(StrEnum):
    """Topics per producing service and aggregate, versioned by major contract."""

    INTAKE_COMPLAINT = "intake.complaint.v1"
    TRIAGE_COMPLAINT = "triage.complaint.v1"
    RESOLUTION_CASE = "resolution.case.v1"
    NOTIFICATION_DELIVERY = "notification.delivery.v1"


DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    """Names the dead-letter twin of a topic."""
    return f"{topic}{DLQ_SUFFIX}"


def qualified_topic(topic: str, prefix: str) -> str:
    """Applies a deployment's topic prefix (empty in production, unique per test run)."""
    return f"{prefix}{topic}"


def all_topic_names(prefix: str = "") -> list[str]:
    """Lists every topic and its dead-letter twin, as created on the broker."""
    names: list[str] = []
    for topic in Topic:
        names.append(qualified_topic(topic.value, prefix))
        names.append(qualified_topic(dlq_topic(topic.value), prefix))
    return names
