"""aiokafka factories with the platform's safe defaults, and topic administration."""

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from shared.events.topics import DLQ_SUFFIX

logger = logging.getLogger(__name__)


def create_producer(
    bootstrap_servers: str,
    *,
    client_id: str,
    request_timeout_ms: int = 30_000,
    security: Mapping[str, Any] | None = None,
) -> AIOKafkaProducer:
    """An idempotent producer: acks from all replicas, no duplicates or reordering on retry.

    `security`: ServiceSettings.kafka_client_options() (SASL/TLS), nothing on loopback.
    """
    return AIOKafkaProducer(
        **dict(security or {}),
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=request_timeout_ms,
    )


def create_consumer(
    bootstrap_servers: str,
    *,
    group_id: str,
    client_id: str,
    session_timeout_ms: int = 10_000,
    rebalance_timeout_ms: int = 60_000,
    max_poll_interval_ms: int = 300_000,
    max_poll_records: int = 100,
    fetch_max_wait_ms: int = 500,
    fetch_min_bytes: int = 1,
    security: Mapping[str, Any] | None = None,
) -> AIOKafkaConsumer:
    """A group consumer that never auto-commits and starts new groups at the beginning.

    The rebalance timeout is explicit: left unset, aiokafka uses the session timeout, and
    a member still finishing its record when partitions move would be evicted.
    """
    return AIOKafkaConsumer(
        **dict(security or {}),
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 4, 500),
        rebalance_timeout_ms=rebalance_timeout_ms,
        max_poll_interval_ms=max_poll_interval_ms,
        max_poll_records=max_poll_records,
        fetch_max_wait_ms=fetch_max_wait_ms,
        fetch_min_bytes=fetch_min_bytes,
        isolation_level="read_committed",
    )


HOUR_MS = 3_600_000
DEFAULT_RETENTION_MS = 7 * 24 * HOUR_MS
DEFAULT_DLQ_RETENTION_MS = 30 * 24 * HOUR_MS
# Kafka deletes whole segments once their newest message is past retention, so a message can
# outlive retention.ms by up to segment.ms (default 7 days): roll daily to bound that overshoot.
SEGMENT_MS = 24 * HOUR_MS
UNLIMITED = -1
# DescribeConfigs config_source 1 = DYNAMIC_TOPIC_CONFIG (set on the topic itself).
_TOPIC_OVERRIDE_SOURCE = 1


class TopicAdminError(RuntimeError):
    """The broker refused, or cannot hold, the wanted topic layout."""


class PartitionMismatchError(TopicAdminError):
    """Existing topics have another partition count than configured; nothing was changed."""

    def __init__(self, mismatches: dict[str, tuple[int, int]]) -> None:
        self.mismatches = mismatches
        listed = "; ".join(
            f"{name} has {actual} partitions, configured {wanted}"
            for name, (actual, wanted) in sorted(mismatches.items())
        )
        super().__init__(
            f"partition count mismatch: {listed}. Nothing was changed: adding partitions "
            "remaps keys and reorders a complaint's in-flight events, and partitions never "
            "shrink. Grow them deliberately (force_partitions, `--force-partitions`) while no "
            "traffic flows, or configure the existing count."
        )


def topic_configs_for(
    topic: str, *, retention_ms: int, dlq_retention_ms: int, min_insync_replicas: int
) -> dict[str, str]:
    """The topic-level configs the platform sets on a topic (dead-letter topics keep longer)."""
    retention = dlq_retention_ms if topic.endswith(DLQ_SUFFIX) else retention_ms
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(retention),
        "segment.ms": str(SEGMENT_MS),
        "min.insync.replicas": str(min_insync_replicas),
    }


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    retention_ms: int = DEFAULT_RETENTION_MS,
    dlq_retention_ms: int = DEFAULT_DLQ_RETENTION_MS,
    force_partitions: bool = False,
    timeout_s: float = 60.0,
    security: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Creates missing topics with their configs and corrects config drift; returns what it did.

    `security`: the admin principal's SASL/TLS options (`kafka_security_options`), if any.

    Raises PartitionMismatchError, before changing anything, when an existing topic has another
    partition count, unless `force_partitions` (then fewer partitions are grown; more are kept,
    since partitions cannot shrink). The replication factor of existing topics is reported,
    never changed (that takes a partition reassignment).
    """
    _validate_layout(partitions, replication_factor, min_insync_replicas)
    for value in (retention_ms, dlq_retention_ms):
        if value != UNLIMITED and value < 1:
            raise ValueError(f"retention must be positive milliseconds or -1, not {value}")
    wanted = list(dict.fromkeys(topics))
    configs = {
        name: topic_configs_for(
            name,
            retention_ms=retention_ms,
            dlq_retention_ms=dlq_retention_ms,
            min_insync_replicas=min_insync_replicas,
        )
        for name in wanted
    }
    admin = AIOKafkaAdminClient(
        **dict(security or {}), bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000
    )
    await asyncio.wait_for(admin.start(), timeout_s)
    outcome: dict[str, str] = {}
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        present = [name for name in wanted if name in existing]
        layout = await _partition_layout(admin, present)
        # Check everything first, so a refused run leaves the cluster as it found it.
        mismatches = {
            name: (count, partitions) for name, (count, _) in layout.items() if count != partitions
        }
        if mismatches and not force_partitions:
            raise PartitionMismatchError(mismatches)
        if missing:
            brokers = len((await admin.describe_cluster())["brokers"])
            if replication_factor > brokers:
                raise TopicAdminError(
                    f"replication factor {replication_factor} needs at least "
                    f"{replication_factor} brokers, the cluster at {bootstrap_servers} has "
                    f"{brokers}; lower the replication factor or add brokers "
                    f"(topics not created: {', '.join(missing)})"
                )
            outcome.update(await _create(admin, missing, partitions, replication_factor, configs))
        for name, (count, replicas) in layout.items():
            notes = [f"exists ({count} partitions, replication factor {replicas})"]
            if replicas != replication_factor:
                logger.warning(
                    "topic %s has replication factor %d, configured %d",
                    name,
                    replicas,
                    replication_factor,
                )
                notes.append(
                    f"replication factor {replicas} differs from configured "
                    f"{replication_factor} (not changed: needs a partition reassignment)"
                )
            if count < partitions:
                notes.append(f"grown {count}->{partitions} partitions (forced)")
            elif count > partitions:
                notes.append(f"kept {count} partitions (configured {partitions}; cannot shrink)")
            outcome[name] = "; ".join(notes)
        for name, change in (await _correct_configs(admin, present, configs)).items():
            outcome[name] += f"; {change}"
        grow = {
            name: NewPartitions(partitions)
            for name, (count, _) in layout.items()
            if count < partitions
        }
        if grow:
            logger.warning("growing partitions of %s (forced)", sorted(grow))
            await admin.create_partitions(grow)
        await _wait_for_leaders(admin, wanted, timeout_s)
    finally:
        await admin.close()
    return outcome


def _validate_layout(partitions: int, replication_factor: int, min_insync_replicas: int) -> None:
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    if replication_factor < 1:
        raise ValueError(f"replication factor must be at least 1, not {replication_factor}")
    if not 1 <= min_insync_replicas <= replication_factor:
        # With more in-sync replicas required than exist, every acks=all write fails.
        raise ValueError(
            f"min.insync.replicas must be between 1 and the replication factor "
            f"({replication_factor}), not {min_insync_replicas}"
        )


async def _partition_layout(
    admin: AIOKafkaAdminClient, topics: list[str]
) -> dict[str, tuple[int, int]]:
    """topic -> (partition count, replication factor) of existing topics."""
    if not topics:
        return {}
    layout: dict[str, tuple[int, int]] = {}
    for topic in await admin.describe_topics(topics):
        if topic["error_code"] != 0:
            raise TopicAdminError(
                f"cannot describe topic {topic['topic']}: {for_code(topic['error_code']).__name__}"
            )
        replicas = max((len(p["replicas"]) for p in topic["partitions"]), default=0)
        layout[topic["topic"]] = (len(topic["partitions"]), replicas)
    return layout


async def _create(
    admin: AIOKafkaAdminClient,
    names: list[str],
    partitions: int,
    replication_factor: int,
    configs: dict[str, dict[str, str]],
) -> dict[str, str]:
    response = await admin.create_topics(
        [
            NewTopic(name, partitions, replication_factor, topic_configs=configs[name])
            for name in names
        ]
    )
    # create_topics reports per-topic errors in the response instead of raising.
    done: dict[str, str] = {}
    failures: list[str] = []
    for name, code, *rest in response.topic_errors:
        message = rest[0] if rest else None
        if code == 0:
            settings = ", ".join(f"{k}={v}" for k, v in sorted(configs[name].items()))
            done[name] = (
                f"created ({partitions} partitions, replication factor "
                f"{replication_factor}, {settings})"
            )
        elif for_code(code) is TopicAlreadyExistsError:
            # Another process created it first: that was the goal anyway.
            done[name] = "exists (created concurrently)"
        else:
            failures.append(f"{name}: {for_code(code).__name__}: {message or ''}".rstrip(": "))
    if failures:
        raise TopicAdminError("could not create topics: " + "; ".join(failures))
    return done


async def _describe_configs(
    admin: AIOKafkaAdminClient, topics: list[str], names: list[str] | None = None
) -> dict[str, dict[str, tuple[str | None, bool]]]:
    """topic -> {config: (effective value, set on the topic itself)}."""
    if not topics:
        return {}
    keys = dict.fromkeys(names) if names else None
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, keys) for topic in topics]
    )
    described: dict[str, dict[str, tuple[str | None, bool]]] = {}
    for response in responses:
        for code, message, _type, topic, entries in response.resources:
            if code != 0:
                raise TopicAdminError(
                    f"cannot read the configs of topic {topic}: "
                    f"{for_code(code).__name__}: {message or ''}".rstrip(": ")
                )
            described[topic] = {
                entry[0]: (entry[1], _is_topic_override(entry[3])) for entry in entries
            }
    return described


def _is_topic_override(source_or_is_default: int | bool) -> bool:
    # DescribeConfigs v0 answers `is_default`; v1+ answers `config_source`.
    if isinstance(source_or_is_default, bool):
        return not source_or_is_default
    return source_or_is_default == _TOPIC_OVERRIDE_SOURCE


async def _correct_configs(
    admin: AIOKafkaAdminClient, topics: list[str], configs: dict[str, dict[str, str]]
) -> dict[str, str]:
    """Sets wanted configs that differ or only follow a broker default; returns the changes."""
    described = await _describe_configs(admin, topics)
    changes: dict[str, str] = {}
    resources: list[ConfigResource] = []
    for topic in topics:
        current = described.get(topic, {})
        drift = {
            key: value
            for key, value in configs[topic].items()
            if current.get(key, (None, False)) != (value, True)
        }
        if not drift:
            continue
        # AlterConfigs replaces every topic-level setting: keep the overrides we do not manage.
        kept = {key: value for key, (value, own) in current.items() if own and value is not None}
        resources.append(
            ConfigResource(ConfigResourceType.TOPIC, topic, {**kept, **configs[topic]})
        )
        changes[topic] = "set " + ", ".join(
            f"{key}={value} (was {_describe_value(current.get(key))})"
            for key, value in sorted(drift.items())
        )
    if resources:
        for response in await admin.alter_configs(resources):
            failures = [
                f"{topic}: {for_code(code).__name__}: {message or ''}".rstrip(": ")
                for code, message, _type, topic in response.resources
                if code != 0
            ]
            if failures:
                raise TopicAdminError("could not alter topic configs: " + "; ".join(failures))
        for topic, change in changes.items():
            logger.warning("corrected topic config of %s: %s", topic, change)
    return changes


def _describe_value(current: tuple[str | None, bool] | None) -> str:
    if current is None:
        return "unset"
    value, own = current
    return str(value) if own else f"broker default {value}"


async def topic_configs(
    bootstrap_servers: str, topics: Iterable[str], names: list[str] | None = None
) -> dict[str, dict[str, str | None]]:
    """The effective configs (all, or the named ones) of existing topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000)
    await admin.start()
    try:
        described = await _describe_configs(admin, list(dict.fromkeys(topics)), names)
    finally:
        await admin.close()
    return {
        topic: {key: value for key, (value, _) in entries.items()}
        for topic, entries in described.items()
    }


async def topic_retention_ms(bootstrap_servers: str, topics: Iterable[str]) -> dict[str, int]:
    """The effective `retention.ms` of each topic (-1: kept forever)."""
    described = await topic_configs(bootstrap_servers, topics, ["retention.ms"])
    return {
        topic: int(entries["retention.ms"] or UNLIMITED) for topic, entries in described.items()
    }


def longest_message_life_ms(configs: dict[str, str | None]) -> int:
    """How long a message can stay in a topic with these configs (-1: forever).

    Retention deletes whole segments once their newest message is past `retention.ms`, so the
    oldest message of a segment can stay up to `segment.ms` longer.
    """
    retention = int(configs.get("retention.ms") or UNLIMITED)
    if retention < 0:
        return UNLIMITED
    return retention + int(configs.get("segment.ms") or 7 * 24 * HOUR_MS)


async def check_inbox_outlives_topics(
    bootstrap_servers: str, topics: Iterable[str], *, inbox_retention_hours: int
) -> None:
    """Refuses (RuntimeError) when a consumed topic can keep a message longer than the inbox.

    Such a message could be delivered again (a reset or expired group offset re-reads the
    topic) after its inbox row was purged, and would then be applied twice. A topic that keeps
    messages forever is always refused: the inbox always purges.
    """
    try:
        described = await topic_configs(bootstrap_servers, topics, ["retention.ms", "segment.ms"])
    except TopicAdminError as exc:
        raise TopicAdminError(
            f"cannot check the retention of consumed topics ({exc}); "
            "create them first (`python -m services topics`)"
        ) from exc
    inbox_ms = inbox_retention_hours * HOUR_MS
    problems = []
    for topic, configs in sorted(described.items()):
        life = longest_message_life_ms(configs)
        if life == UNLIMITED:
            problems.append(f"{topic} keeps messages forever (retention.ms=-1)")
        elif life > inbox_ms:
            problems.append(
                f"{topic} can keep a message {life / HOUR_MS:g} h "
                f"(retention.ms={configs.get('retention.ms')} + segment.ms="
                f"{configs.get('segment.ms')})"
            )
    if problems:
        raise RuntimeError(
            f"inbox retention ({inbox_retention_hours} h) is shorter than the retention of "
            f"consumed topics: {'; '.join(problems)}. A redelivered message whose inbox row was "
            "purged would be applied twice: raise <X>_INBOX_RETENTION_HOURS or give the topics "
            "a shorter, finite retention (`python -m services topics`)."
        )


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        described = await admin.describe_topics(topics)
        ready = all(
            topic["error_code"] == 0
            and topic["partitions"]
            and all(p["leader"] >= 0 for p in topic["partitions"])
            for topic in described
        )
        if ready:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"topics without leaders after {timeout_s}s: {topics}")
        await asyncio.sleep(0.2)


async def delete_topics(bootstrap_servers: str, topics: Iterable[str]) -> None:
    """Deletes topics (tests clean up after themselves)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [name for name in topics if name in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
