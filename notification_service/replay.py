"""Replays dead letters: `python -m notification_service.replay [--message ID] [--endpoint ID]`.

Options repeat (`--message A --message B`). Each replayed message gets a fresh retry schedule
and keeps its delivery key, so a receiver that saw an earlier attempt recognises it. Without
options, every dead letter is replayed.
"""

import argparse
import asyncio
import sys
from collections.abc import Sequence
from uuid import UUID

from notification_service import service
from notification_service.config import get_settings
from shared.db import create_engine, create_sessionmaker, transaction


async def replay(message_ids: list[UUID] | None, endpoint_ids: list[UUID] | None) -> list[UUID]:
    """Replays the chosen dead letters in one transaction; returns their ids."""
    settings = get_settings()
    engine = create_engine(
        settings.database_url, pool_size=1, application_name="notification-replay"
    )
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            return await service.replay_dead_letters(
                session, message_ids=message_ids, endpoint_ids=endpoint_ids
            )
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the command line and replays."""
    parser = argparse.ArgumentParser(prog="python -m notification_service.replay")
    parser.add_argument("--message", action="append", type=UUID, help="a dead letter's id")
    parser.add_argument(
        "--endpoint", action="append", type=UUID, help="every dead letter of a webhook endpoint"
    )
    args = parser.parse_args(argv)
    replayed = asyncio.run(replay(args.message, args.endpoint))
    for message_id in replayed:
        sys.stdout.write(f"{message_id}\n")
    sys.stderr.write(f"replayed {len(replayed)} dead letter(s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
