"""Kafka ACLs derived from the catalog: each service principal writes only its own topics.

`python -m services kafka-acls --bootstrap-server kafka:9093 --command-config admin.properties`
prints the `kafka-acls.sh` commands for a SASL cluster (deploy/k8s/README.md). Per service
principal `User:<service>`:
- WRITE and DESCRIBE on the topics it produces (its outbox) and on the `.dlq` twins of the
  topics it consumes (a poison message goes to the dead-letter twin of its source topic);
- READ, DESCRIBE and DESCRIBE_CONFIGS on the topics it subscribes to, READ on its consumer
  group `<service>-service`;
- IDEMPOTENT_WRITE on the cluster (the idempotent producer).
Nothing else: no other topic, no topic creation (the init Job's admin principal creates them).
"""

from dataclasses import dataclass

from services.catalog import CATALOG, ServiceEntry
from shared.events.topics import dlq_topic, qualified_topic


@dataclass(frozen=True)
class Acl:
    """One allow rule."""

    principal: str
    operation: str
    resource: str  # topic | group | cluster
    name: str


def service_acls(entry: ServiceEntry, prefix: str = "") -> list[Acl]:
    """The allow rules of one service's principal."""
    user = f"User:{entry.name}"
    rules: list[Acl] = []
    writes = [qualified_topic(topic, prefix) for topic in entry.topics_out]
    writes += [dlq_topic(qualified_topic(topic, prefix)) for topic in entry.topics_in]
    for topic in writes:
        rules += [Acl(user, "Write", "topic", topic), Acl(user, "Describe", "topic", topic)]
    for topic in entry.topics_in:
        name = qualified_topic(topic, prefix)
        rules += [
            Acl(user, "Read", "topic", name),
            Acl(user, "Describe", "topic", name),
            # the start-up check that the inbox outlives the topic's retention
            Acl(user, "DescribeConfigs", "topic", name),
        ]
    if entry.topics_in:
        rules.append(Acl(user, "Read", "group", f"{entry.name}-service"))
    rules.append(Acl(user, "IdempotentWrite", "cluster", "kafka-cluster"))
    return rules


def all_acls(prefix: str = "") -> list[Acl]:
    """Every service's rules."""
    return [acl for entry in CATALOG for acl in service_acls(entry, prefix)]


def kafka_acls_commands(bootstrap: str, command_config: str, prefix: str = "") -> list[str]:
    """`kafka-acls.sh --add` commands for every rule."""
    commands = []
    for acl in all_acls(prefix):
        target = "--cluster" if acl.resource == "cluster" else f"--{acl.resource} {acl.name}"
        commands.append(
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {command_config} "
            f"--add --allow-principal {acl.principal} --operation {acl.operation} {target}"
        )
    return commands
