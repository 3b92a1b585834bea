"""`python -m services <command>`: init the stack, run services, replay dead letters."""

import argparse
import asyncio
import sys
from pathlib import Path

from services.catalog import CATALOG, select_services
from services.environment import StackConfig
from services.launcher import ServiceProcess, run_foreground
from services.provision import provision
from shared.db.migrations import upgrade
from shared.events.topics import all_topic_names
from shared.messaging.dlq import replay_dead_letters
from shared.messaging.kafka import ensure_topics

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


def cmd_topics(config: StackConfig) -> None:
    """Creates every topic and its dead-letter twin."""
    outcome = asyncio.run(
        ensure_topics(
            config.kafka_bootstrap,
            all_topic_names(config.topic_prefix),
            partitions=config.partitions,
        )
    )
    for name, what in sorted(outcome.items()):
        print(f"topic {name}: {what}")


def main(argv: list[str] | None = None) -> int:
    """Parses the command line and runs one command."""
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("provision", help="create database, roles and schemas (admin DSN needed)")
    sub.add_parser("migrate", help="run every service's migrations")
    sub.add_parser("topics", help="create Kafka topics and their .dlq twins")
    sub.add_parser("init", help="provision + migrate + topics")
    up = sub.add_parser("up", help="run services as processes until Ctrl-C / SIGTERM")
    up.add_argument("names", nargs="*", help="services to run (default: all four)")
    up.add_argument("--no-init", action="store_true", help="skip provision/migrate/topics")
    up.add_argument("--quiet", action="store_true", help="do not echo service logs")
    up.add_argument("--log-dir", default=str(REPO_ROOT / ".run" / "logs"))
    replay = sub.add_parser("replay-dlq", help="republish a dead-letter topic's messages")
    replay.add_argument("topic", help="e.g. intake.complaint.v1.dlq (prefix applied)")
    replay.add_argument("--limit", type=int, default=None)
    replay.add_argument("--group", default="dlq-replayer")
    args = parser.parse_args(argv)
    config = StackConfig.from_env()

    if args.command == "provision":
        cmd_provision(config)
    elif args.command == "migrate":
        cmd_migrate(config)
    elif args.command == "topics":
        cmd_topics(config)
    elif args.command == "init":
        cmd_provision(config)
        cmd_migrate(config)
        cmd_topics(config)
    elif args.command == "up":
        if not args.no_init:
            cmd_provision(config)
            cmd_migrate(config)
            cmd_topics(config)
        echo = None if args.quiet else (lambda line: print(line, flush=True))
        processes = [
            ServiceProcess(entry, config, log_dir=Path(args.log_dir), echo=echo)
            for entry in select_services(args.names)
        ]
        return run_foreground(processes)
    elif args.command == "replay-dlq":
        result = asyncio.run(
            replay_dead_letters(
                config.kafka_bootstrap,
                f"{config.topic_prefix}{args.topic}",
                group_id=args.group,
                limit=args.limit,
            )
        )
        print(f"replayed {result.replayed}, skipped {result.skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
