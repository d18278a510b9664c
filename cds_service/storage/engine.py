"""The database engine, with the timeouts that keep a database that stops answering from
holding a call, a thread or a pooled connection for ever.

PostgreSQL gets a connect timeout, a server-side ``statement_timeout`` and TCP keepalives (a
server cut off by a partition cannot send its cancellation; keepalives notice the silent peer
instead); SQLite waits at most the statement timeout for its file's write lock. What the URL
already says wins: a ``connect_timeout`` of its own, and its ``options`` (the tests' per-schema
``search_path``) are kept, the statement timeout appended to them.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, event, make_url, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from cds_service.settings import InvalidSettings
from cds_service.tracebacks import database_error

# RETURNING (how a feedback write, and on a full token list the replay check, tell what they
# stored) came in SQLite 3.35 (2021); older ones fail those calls with a 500, so they stop the
# start. RHEL 8's Python 3.11 links SQLite 3.26, RHEL 9's 3.34.
SQLITE_NEEDED = (3, 35, 0)
EXAMPLE = "sqlite:///path or postgresql+psycopg://user:password@host:5432/db"
log = logging.getLogger(__name__)


def database_url(url: str) -> URL:
    """``url`` parsed, if the service can run on it; else why not, naming the setting and never
    the URL (it may hold a password). ``postgresql://`` is run with psycopg, the driver installed."""
    try:
        parsed = make_url(url)
        backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    except (ArgumentError, NoSuchModuleError, ValueError):  # ValueError: a port that is no number
        raise InvalidSettings(f"CDS_DATABASE_URL: not a database URL the service knows; write {EXAMPLE}") from None
    if backend != "sqlite" and url.count("@") > 1:  # a password's "@" not written %40: part of it read as the host
        raise InvalidSettings("CDS_DATABASE_URL: write an @ in the password as %40")
    if backend == "postgresql" and driver in ("psycopg", "psycopg2") and "+" not in parsed.drivername:
        return parsed.set(drivername="postgresql+psycopg")  # SQLAlchemy 2.0's own default is psycopg2
    if (backend, driver) not in (("postgresql", "psycopg"), ("sqlite", "pysqlite")):
        raise InvalidSettings(f"CDS_DATABASE_URL: the service runs on {EXAMPLE}, not {parsed.drivername}://")
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise InvalidSettings(
            "CDS_DATABASE_URL: an in-memory SQLite database keeps nothing; name a file, sqlite:///path"
        )
    if backend == "sqlite" and sqlite3.sqlite_version_info < SQLITE_NEEDED:
        raise InvalidSettings(
            f"CDS_DATABASE_URL: a SQLite database needs SQLite 3.35 or later, and this Python's is "
            f"{sqlite3.sqlite_version}: set CDS_DATABASE_URL to PostgreSQL, or run a Python built with a newer SQLite"
        )
    return parsed


class CannotStartOnDatabase(Exception):
    """The service cannot start on its database: out of reach, refusing the user, a file that is
    no database, a migration stopped (its tables held past its tries, a step cancelled) or a
    schema newer than the service's. Told in one line (``cds-service`` exits 3, a failed start),
    not a traceback: each is the deployment's to mend, not the service's bug."""


# What the deployment mends, by PostgreSQL's SQLSTATE: its class (connection, authorisation,
# no such database or schema, resources, operator intervention, system) or the code itself
# (lock not had, a read-only standby, no privilege on the schema).
_PG_CLASSES = ("08", "28", "3D", "3F", "53", "57", "58")
_PG_CODES = ("55P03", "25006", "42501")
# And by SQLite's error name (its base, before an extended code's suffix).
_SQLITE = tuple(
    f"SQLITE_{name}"
    for name in ("CANTOPEN", "NOTADB", "CORRUPT", "READONLY", "IOERR", "FULL", "PERM", "BUSY", "LOCKED", "AUTH")
)


@contextmanager
def opening(parsed: URL) -> Iterator[None]:
    """The start's failures on the database that the deployment mends as ``CannotStartOnDatabase``,
    naming the database but not the URL (a password, in its query too), the error by its class and
    SQLSTATE (``tracebacks.database_error``) or SQLite's own words (which carry no values). Any
    other database error (a migration's bug: bad SQL, a constraint) keeps its traceback."""
    try:
        yield
    except CannotStartOnDatabase as error:
        raise CannotStartOnDatabase(f"cannot start on the database {named(parsed)}: {error}") from None
    except OSError as error:  # the SQLite file's migration lock beside it, not writable
        told = f"{error.strerror}: {error.filename}" if error.filename else str(error)
        raise CannotStartOnDatabase(f"cannot start on the database {named(parsed)}: {told}") from None
    except DBAPIError as error:
        said = deployment_fault(error)
        if said is None:
            raise
        raise CannotStartOnDatabase(f"cannot start on the database {named(parsed)}: {said}") from None


def deployment_fault(error: DBAPIError) -> str | None:
    """How to tell ``error`` in one line, if it is the deployment's to mend; else None (a
    statement's own error: the service's bug, or the data's)."""
    original = error.orig
    if isinstance(original, sqlite3.Error):
        name = getattr(original, "sqlite_errorname", "") or ""
        return f"{name}: {original}" if name.startswith(_SQLITE) else None
    state = getattr(original, "sqlstate", None)
    # No SQLSTATE and no statement: libpq's own, in connecting (a COMMIT's error has a SQLSTATE).
    if (state is None and error.statement is None) or (state and (state[:2] in _PG_CLASSES or state in _PG_CODES)):
        return " ".join(database_error(error).split())  # libpq's hint is on a line of its own
    return None


def named(parsed: URL) -> str:
    """The database as messages name it: a SQLite file by its path, PostgreSQL by host, port and name, never the URL."""
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''} (CDS_DATABASE_URL)"


def make_engine(parsed: URL, *, statement_timeout: float, read_only: bool = False) -> Engine:
    """The engine of a URL ``database_url`` let through; database errors name no parameter value
    (a comment, a patient key). Opening a connection may take as long as a statement (libpq
    counts whole seconds, 2 at least). ``read_only``: a reader's (``cds-service report``), which
    opens a SQLite file in a directory it cannot write as it is (``_read_only_uri``)."""
    connect_timeout = max(2, math.ceil(statement_timeout))
    options: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True, "pool_timeout": connect_timeout}
    if parsed.get_backend_name() == "postgresql":
        options["connect_args"] = postgresql_connect_args(parsed, connect_timeout, statement_timeout)
    try:
        engine = create_engine(parsed, **options)
    except (ValueError, TypeError, ArgumentError):  # an option the driver cannot take (?timeout=abc, ?port=abc)
        raise InvalidSettings("CDS_DATABASE_URL: an option of the wrong type for the driver") from None  # value unsaid
    if engine.dialect.name == "sqlite":
        busy_ms = max(1, round(statement_timeout * 1000))
        same_file = _SameFile(parsed.database or "")
        as_it_is = _read_only_uri(parsed) if read_only else None
        event.listen(engine, "connect", lambda connection, _record: _sqlite_pragmas(connection, busy_ms, as_it_is))
        # Before a connection opens (``sqlite3.connect`` makes an empty file where one was
        # taken away, and SQLite then deletes the WAL beside it: every write not yet checkpointed)
        # and as a pooled one is handed out.
        event.listen(engine, "do_connect", same_file.check)
        event.listen(engine, "checkout", same_file.check)
        if as_it_is is not None:  # after the check: the first do_connect returning a connection is the last run

            def open_as_it_is(_dialect: Any, _record: Any, _cargs: list[Any], cparams: dict[str, Any]) -> Any:
                return _open_read_only(as_it_is, {**cparams, "uri": True})

            event.listen(engine, "do_connect", open_as_it_is)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgresql_utc)
    return engine


def postgresql_connect_args(url: URL, connect_timeout: int, statement_timeout: float) -> dict[str, Any]:
    """libpq keywords for the timeouts, merged with what the URL's query already sets; and no
    statement prepared on the server (psycopg prepares one run five times on a connection).
    Behind a pooler in transaction mode (PgBouncer before 1.21, or without
    ``max_prepared_statements``) the next transaction can land on a server connection that never
    prepared it, and fails; unprepared, a statement costs the server ~25 µs more to plan."""
    query = url.query
    given = query.get("options", "")
    given = " ".join(given) if isinstance(given, tuple) else given
    args: dict[str, Any] = {}
    if "statement_timeout" not in given:
        args["options"] = f"{given} -c statement_timeout={max(1, round(statement_timeout * 1000))}".strip()
    idle = max(1, math.ceil(statement_timeout))
    defaults = {
        "connect_timeout": connect_timeout,
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        # Data sent and never acknowledged (the server's host gone): the connection is dropped.
        "tcp_user_timeout": (idle + connect_timeout) * 1000,
    }
    args.update({key: value for key, value in defaults.items() if key not in query})
    args["prepare_threshold"] = None  # psycopg's, not libpq's: a URL's text value for it would not do
    return args


def unbounded(connection: Connection, *, lock_wait: str | None = None) -> None:
    """No statement timeout for the rest of this transaction: migrations and the retention sweep
    may legitimately run long (and wait for another instance's migration lock); ``lock_wait``,
    as ``waits_for_locks`` says."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL statement_timeout = 0"))
    if lock_wait is not None:
        waits_for_locks(connection, lock_wait)


def waits_for_locks(connection: Connection, at_most: str) -> None:
    """How long a statement of this transaction may wait for a lock (PostgreSQL's ``lock_timeout``,
    ``"2s"``): then it fails, where waiting on a transaction left open elsewhere would hold up
    what depends on this one. (SQLite waits its busy timeout, the statement timeout.)"""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SET LOCAL lock_timeout = '{at_most}'"))


def _postgresql_utc(connection: Any, _record: Any) -> None:
    """Times read back are UTC, whatever the server's time zone, and a date taken of one is its
    UTC date (``storage.site_day`` shifts a time by the site's offset first)."""
    cursor = connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    connection.commit()


def _sqlite_pragmas(connection: Any, busy_ms: int, read_only_uri: str | None) -> None:
    cursor = connection.cursor()
    if read_only_uri is None:  # else a file not to be written, in the journal mode it has
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # see Store.writing
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.close()


def _read_only_uri(parsed: URL) -> str | None:
    """How a reader opens a SQLite file in a directory it cannot write (a backup on a read-only
    volume, or another user's): read-only (``_open_read_only``). None where SQLite opens it as
    usual: a directory it may write, or a URI of the operator's own."""
    if parsed.query.get("uri"):
        return None
    path = os.path.abspath(str(parsed.database))
    if os.access(os.path.dirname(path), os.W_OK):
        return None
    return f"file:{urllib.parse.quote(path)}?mode=ro"


def _open_read_only(uri: str, options: dict[str, Any]) -> sqlite3.Connection:
    """A connection read-only, as each is opened; as a file nothing changes (``immutable``) only
    when SQLite cannot read it so and nothing serves it. To read a WAL database SQLite makes a
    ``-shm`` file beside it, and the report stopped "unable to open database file" (an operator's
    review): a backup with neither ``-wal`` nor ``-shm`` has every page in the database file, and
    no process serves it (one that does keeps both while it runs). Chosen once, from a ``-wal``
    absent at the start, a service starting meanwhile was read as its file alone ("no such table")."""
    connection = sqlite3.connect(uri, **options)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a WAL database's -shm needed here
        return connection
    except sqlite3.OperationalError:
        connection.close()
        path = urllib.parse.unquote(uri.removeprefix("file:").partition("?")[0])
        if os.path.exists(f"{path}-wal") or os.path.exists(f"{path}-shm"):
            raise
    return sqlite3.connect(f"{uri}&immutable=1", **options)


class _SameFile:
    """The SQLite file the engine first opened, by device and inode. Deleted or replaced under a
    running service (an ``rm``, a backup moved over it), its connections went on writing to the
    unlinked file, and feedback acknowledged stored was gone at the next start. Refused instead,
    an outage (``storage.availability``: records held, feedback 503) until the file is back."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._identity: tuple[int, int] | None = None
        self._told = False

    def check(self, *_connection: Any) -> None:
        if not self._path or self._path == ":memory:":
            return
        try:
            status = os.stat(self._path)
            identity: tuple[int, int] | None = (status.st_dev, status.st_ino)
        except OSError:
            identity = None
        if self._identity is None or identity == self._identity:
            self._identity, self._told = self._identity or identity, False
            return
        if not self._told:
            self._told = True
            log.error(
                "the database file %s was deleted or replaced under the running service: nothing is "
                "written until it is back, or the service is restarted on the new one",
                self._path,
            )
        raise sqlite3.OperationalError("the database file was deleted or replaced")
