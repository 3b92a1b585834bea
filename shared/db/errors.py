"""Telling "the database is unavailable right now" from "this statement is wrong".

Behind SQLAlchemy every asyncpg server error arrives as a DBAPIError, never an
OperationalError, so the class alone says nothing. The SQLSTATE does: connection
exceptions, a server shutting down or starting up, too many connections, a read-only
standby after failover, serialization failures and deadlocks all pass on their own.
"""

from sqlalchemy import exc as sa_exc

# SQLSTATE classes and codes that mean "try again later", not "this message is bad".
TRANSIENT_SQLSTATE_CLASSES = frozenset(
    {
        "08",  # connection exception (connection refused, lost, rejected)
        "53",  # insufficient resources (53300 too many connections, out of memory, disk full)
        "57",  # operator intervention (57P01 admin shutdown, 57P02 crash, 57P03 cannot connect)
    }
)
TRANSIENT_SQLSTATES = frozenset(
    {
        "25006",  # read_only_sql_transaction: a standby after failover, or a read-only switch
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
    }
)
# 57014 query_canceled is in class 57 but means a statement timeout or a cancel: it may
# repeat forever for one message, so it counts as the message's failure.
NOT_TRANSIENT_SQLSTATES = frozenset({"57014"})


# What a failing database or connection raises, for handlers that must catch exactly those.
DATABASE_ERROR_CLASSES: tuple[type[Exception], ...] = (
    sa_exc.SQLAlchemyError,
    ConnectionError,
    TimeoutError,
)


def sqlstate_of(exc: BaseException) -> str | None:
    """The first SQLSTATE found on the exception or the errors it wraps."""
    for error in _chain(exc):
        code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def is_transient_database_error(exc: BaseException) -> bool:
    """True when the failure is the database's availability, not the work being done."""
    code = sqlstate_of(exc)
    if code is not None:
        if code in NOT_TRANSIENT_SQLSTATES:
            return False
        return code in TRANSIENT_SQLSTATES or code[:2] in TRANSIENT_SQLSTATE_CLASSES
    for error in _chain(exc):
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(
            error,
            sa_exc.OperationalError
            | sa_exc.InterfaceError
            | sa_exc.DisconnectionError
            | sa_exc.TimeoutError  # the pool had no free connection in time
            | OSError  # refused, reset, unreachable; TimeoutError is one too
            | ConnectionError,
        ):
            return True
        if type(error).__module__.startswith("asyncpg") and type(error).__name__ in {
            "ConnectionDoesNotExistError",
            "InterfaceError",  # "connection is closed" and kin: no SQLSTATE
            "InternalClientError",
        }:
            return True
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop(0)
        if error is None or any(error is known for known in seen) or len(seen) > 10:
            continue
        seen.append(error)
        pending.extend([getattr(error, "orig", None), error.__cause__, error.__context__])
    return seen
