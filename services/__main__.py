"""`python -m services <command>`: init the stack, run services, replay dead letters."""

import argparse
import asyncio
import sys
from pathlib import Path

from services import access
from services.catalog import CATALOG, select_services
from services.environment import StackConfig
from services.kafka_acls import kafka_acls_commands
from services.launcher import ServiceProcess, run_foreground
from services.provision import ensure_platform_topics, provision
from shared.db.migrations import upgrade
from shared.messaging.dlq import replay_dead_letters
from shared.messaging.kafka import PartitionMismatchError, TopicAdminError

REPO_ROOT = Path(__file__).resolve().parent.parent


def cmd_provision(config: StackConfig) -> None:
    """Creates the database, roles and schemas."""
    asyncio.run(provision(config))
    print(
        f"provisioned database {config.pg_database}: roles and schemas for "
        + ", ".join(entry.name for entry in CATALOG)
    )


def cmd_migrate(config: StackConfig) -> None:
    """Runs each service's migrations as that service's own role."""
    for entry in CATALOG:
        upgrade(entry.package, config.service_database_url(entry))
        print(f"migrated {entry.schema} to head")


def cmd_topics(config: StackConfig, *, force_partitions: bool = False) -> int:
    """Creates every topic and its dead-letter twin, corrects config drift; 0 when all is well."""
    try:
        outcome = asyncio.run(ensure_platform_topics(config, force_partitions=force_partitions))
    except PartitionMismatchError as exc:
        for name, (actual, wanted) in sorted(exc.mismatches.items()):
            print(f"topic {name}: has {actual} partitions, configured {wanted}", file=sys.stderr)
        print(
            "refusing to change partition counts: adding partitions remaps keys and reorders "
            "in-flight complaints. Nothing was changed. Re-run with --force-partitions to grow "
            "them while no traffic flows, or set COMPLAINTS_TOPIC_PARTITIONS to the existing "
            "count.",
            file=sys.stderr,
        )
        return 2
    except TopicAdminError as exc:
        print(f"topics: {exc}", file=sys.stderr)
        return 1
    for name, what in sorted(outcome.items()):
        print(f"topic {name}: {what}")
    return 0


def cmd_init(config: StackConfig, *, force_partitions: bool = False) -> int:
    """Provision, migrate, then topics; the exit status of the topics step."""
    cmd_provision(config)
    cmd_migrate(config)
    return cmd_topics(config, force_partitions=force_partitions)


def main(argv: list[str] | None = None) -> int:
    """Parses the command line and runs one command."""
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("provision", help="create database, roles and schemas (admin DSN needed)")
    sub.add_parser("migrate", help="run every service's migrations")
    topics = sub.add_parser(
        "topics", help="create Kafka topics and their .dlq twins, correct config drift"
    )
    init = sub.add_parser("init", help="provision + migrate + topics")
    for command in (topics, init):
        command.add_argument(
            "--force-partitions",
            action="store_true",
            help="grow existing topics with fewer partitions (remaps keys: only without traffic)",
        )
    up = sub.add_parser("up", help="run services as processes until Ctrl-C / SIGTERM")
    up.add_argument("names", nargs="*", help="services to run (default: all four)")
    up.add_argument("--no-init", action="store_true", help="skip provision/migrate/topics")
    up.add_argument("--quiet", action="store_true", help="do not echo service logs")
    up.add_argument("--log-dir", default=str(REPO_ROOT / ".run" / "logs"))
    replay = sub.add_parser("replay-dlq", help="republish a dead-letter topic's messages")
    replay.add_argument("topic", help="e.g. intake.complaint.v1.dlq (prefix applied)")
    replay.add_argument("--limit", type=int, default=None)
    replay.add_argument(
        "--group", default="dlq-replayer", help="the replayer's own group (its progress)"
    )
    replay.add_argument(
        "--for-group",
        default=None,
        help="replay only dead letters of this consumer group (progress kept apart per group)",
    )
    access.add_parser(sub)
    acls = sub.add_parser("kafka-acls", help="print kafka-acls.sh commands (one principal each)")
    acls.add_argument("--bootstrap-server", default="kafka-bootstrap:9093")
    acls.add_argument("--command-config", default="/etc/kafka/admin.properties")
    args = parser.parse_args(argv)
    config = StackConfig.from_env()

    if args.command == "provision":
        cmd_provision(config)
    elif args.command == "migrate":
        cmd_migrate(config)
    elif args.command == "topics":
        return cmd_topics(config, force_partitions=args.force_partitions)
    elif args.command == "init":
        return cmd_init(config, force_partitions=args.force_partitions)
    elif args.command == "up":
        if not args.no_init:
            status = cmd_init(config)
            if status:
                return status
        echo = None if args.quiet else (lambda line: print(line, flush=True))
        processes = [
            ServiceProcess(entry, config, log_dir=Path(args.log_dir), echo=echo)
            for entry in select_services(args.names)
        ]
        return run_foreground(processes)
    elif args.command == "access":
        return access.run(args, config)
    elif args.command == "kafka-acls":
        for line in kafka_acls_commands(
            args.bootstrap_server, args.command_config, config.topic_prefix
        ):
            print(line)
    elif args.command == "replay-dlq":
        result = asyncio.run(
            replay_dead_letters(
                config.kafka_bootstrap,
                f"{config.topic_prefix}{args.topic}",
                group_id=args.group,
                for_group=args.for_group,
                limit=args.limit,
                security=config.kafka_admin_options(),
            )
        )
        print(
            f"replayed {result.replayed}, skipped {result.skipped} (nested dead letters), "
            f"left {result.other_groups} of other groups"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
