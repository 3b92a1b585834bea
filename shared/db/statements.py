"""Statements built once and run without the ORM layer: the consumers' hot paths.

Building a Core statement per call, and computing its cache key, costs more CPU than running
it. These helpers build each distinct shape once (per table, column set and conflict rule)
and execute on the session's connection, inside the session's transaction.
"""

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Executable, Table, bindparam
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession


async def execute(
    session: AsyncSession, statement: Executable, parameters: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """Runs a prebuilt Core statement on the session's connection (its transaction)."""
    connection = await session.connection()
    return await connection.execute(statement, dict(parameters or {}))


async def insert_row(
    session: AsyncSession,
    table: Table,
    values: Mapping[str, Any],
    *,
    skip_on_conflict: bool = False,
    conflict_columns: tuple[str, ...] = (),
    returning: str | None = None,
) -> CursorResult[Any]:
    """Inserts one row; with `skip_on_conflict`, an existing row makes it a no-op.

    `returning` names the column the result carries, or "*" for the whole row.
    """
    statement = _insert_statement(
        table, tuple(sorted(values)), skip_on_conflict, conflict_columns, returning
    )
    return await execute(session, statement, values)


@functools.cache
def _insert_statement(
    table: Table,
    columns: tuple[str, ...],
    skip_on_conflict: bool,
    conflict_columns: tuple[str, ...],
    returning: str | None,
) -> Executable:
    statement = insert(table).values(
        {name: bindparam(name, type_=table.c[name].type) for name in columns}
    )
    if skip_on_conflict:
        statement = statement.on_conflict_do_nothing(
            index_elements=[table.c[name] for name in conflict_columns] or None
        )
    if returning == "*":
        return statement.returning(*table.c)
    if returning is not None:
        return statement.returning(table.c[returning])
    return statement
