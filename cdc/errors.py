"""The bridge's exception tree, drawn once.

    CdcError                    base of every error the bridge raises on purpose
    ├── ConfigError             a connector file is wrong; carries every problem found, each naming
    │                           the connector, the property, and what is accepted
    ├── Permanent               retrying cannot help (bad data, a missing table, privileges);
    │   └── SourceError         the source database refuses a setting or an object we need
    └── Transient               retrying later may help (connection lost, server restarting, timeouts)

Library exceptions are classified into these at the edges (`classify`), never caught all over.
Messages never contain secrets: config values are masked before they reach an error.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence


class CdcError(Exception):
    """Base of every error the bridge raises on purpose."""


class ConfigError(CdcError):
    """One or more problems in connector configuration, all listed at once."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"- {p}" for p in self.problems) if len(self.problems) > 1
                         else (self.problems[0] if self.problems else "invalid configuration"))


class Permanent(CdcError):
    """Retrying will not help; an operator must act."""


class SourceError(Permanent):
    """The source database lacks a setting, object or privilege the connector needs."""


class Transient(CdcError):
    """A temporary failure: retry with backoff."""


# MySQL/MariaDB error codes: the connection or server is (temporarily) gone, or a lock timed out.
_MYSQL_TRANSIENT = frozenset({1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055})
# ... the user lacks a privilege or the server lacks what was asked for (a purged binlog file).
_MYSQL_SOURCE = frozenset({1044, 1045, 1142, 1143, 1227, 1236, 1049, 1146})


def _classify_mysql(exc: BaseException) -> CdcError | None:
    import pymysql

    if not isinstance(exc, pymysql.Error):
        return None
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = f"{type(exc).__name__}: {exc}"
    if code in _MYSQL_TRANSIENT or isinstance(exc, pymysql.err.InterfaceError):
        return Transient(text)
    if code in _MYSQL_SOURCE:
        return SourceError(text)
    return Permanent(text)


def classify(exc: BaseException) -> CdcError:
    """Map any exception to Transient or Permanent, once, at the edge where it was raised."""
    if isinstance(exc, CdcError):
        return exc
    mysql = _classify_mysql(exc)
    if mysql is not None:
        mysql.__cause__ = exc
        return mysql
    import psycopg  # local: keep this module importable without the driver's import cost

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # The data dir's disk (journal, spill files) is full: capture waits for room, losing nothing.
        where = f" ({exc.filename})" if exc.filename else ""
        err: CdcError = Transient(f"no space left on the disk holding the data dir{where}: nothing after the last "
                                  "durable transaction is confirmed to the source; free space on that disk, or lower "
                                  "journal.retention.ms / journal.retention.bytes; capture resumes by itself once "
                                  "there is room")
    elif isinstance(exc, psycopg.OperationalError | ConnectionError | TimeoutError | OSError):
        err = Transient(f"{type(exc).__name__}: {exc}")
    elif isinstance(exc, psycopg.errors.InsufficientPrivilege | psycopg.errors.UndefinedObject
                    | psycopg.errors.UndefinedTable | psycopg.errors.ObjectNotInPrerequisiteState):
        err = SourceError(f"{type(exc).__name__}: {exc}")
    else:
        err = Permanent(f"{type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err
