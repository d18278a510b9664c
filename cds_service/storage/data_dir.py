"""The data directory's own files: made private, the patient-id key kept in it, and the SQLite
database with the files beside it.

Either failing (the directory a file, not writable; the key not readable, or empty) stops the
start in one line naming what (``InvalidSettings``), not a traceback.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

from cds_service.settings import InvalidSettings

log = logging.getLogger(__name__)

# The data directory, when the service makes it: no other user may enter it, so its files (feedback's
# comments in the database and its write-ahead log, the patient-id key) are the service user's
# alone whatever the umask lets them be. (Missing parents are made as the umask says.)
PRIVATE_DIRECTORY = 0o700
# The files the service makes: the key, the SQLite database and its lock files. Made so, not left
# to the umask, since the directory may be the site's own (0755) and others could read them:
# SQLite makes the database as the umask says (0644 under the usual 022), and its -wal and -shm
# files with the database's own mode, whatever the umask (so 0600 for them too).
PRIVATE_FILE = 0o600

# The files beside the SQLite database that are written: SQLite's write-ahead log and its index,
# the lock of one migration at a time and that of one ``serve`` per file (``Store.claim``).
BESIDE = ("-wal", "-shm", ".migrate.lock", ".migrate.serving")


# The patient-id key's file in the data directory (``CDS_PATIENT_ID_KEY`` unset).
PATIENT_KEY_FILE = "patient-id.key"
# The shortest key taken: hashes under "x" could be reversed by hashing every likely id, as under
# an empty one (an operator's review). The key made is 64 characters.
MIN_KEY_CHARS = 16


def load_patient_key(configured: str | None, key_file: Path) -> bytes:
    """The HMAC key: configured, or generated once into ``key_file`` (mode 0600) and reused. A key
    file that cannot be had stops the start in one line (``InvalidSettings``), and so does an
    empty one: hashes under an empty key could be reversed by hashing every likely id."""
    if configured:
        if len(configured) < MIN_KEY_CHARS:  # its length only: never the key
            raise InvalidSettings(f"CDS_PATIENT_ID_KEY: shorter than {MIN_KEY_CHARS} characters; use a random key")
        return configured.encode()
    try:
        if key_file.exists():
            key = key_file.read_bytes().strip()
            if not key:
                raise InvalidSettings(
                    f"CDS_DATA_DIR: {key_file} is empty: restore it from a backup (a new key would not recognise the "
                    "patients of stored feedback), or delete it to have one made"
                )
            if len(key) < MIN_KEY_CHARS:
                raise InvalidSettings(f"CDS_DATA_DIR: {key_file} is shorter than {MIN_KEY_CHARS} characters")
            return key
        private_directory(key_file.parent, "CDS_DATA_DIR")
        key = secrets.token_hex(32).encode()
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key
    except OSError as error:  # the data directory a file, not writable, the key not readable
        raise InvalidSettings(f"CDS_DATA_DIR: {key_file}: {error.strerror}") from None


def private_directory(path: Path, setting: str) -> None:
    """``path``, made if missing with mode 0700 (an existing directory keeps its own); ``setting``
    is what named it, for the message."""
    try:
        path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidSettings(f"{setting}: cannot make the directory {path}: {error.strerror}") from None


def sqlite_file(path: Path, setting: str, *, writes: bool = True) -> Path:
    """The SQLite database at ``path`` made, if missing, for the service's user alone (``PRIVATE_FILE``),
    before SQLite makes it as the umask says; its directory as ``private_directory`` makes it. An
    existing file keeps its mode, which is the operator's (a group the backups run as may read
    it), and is said once, at the start, if other users may read it. The migration lock's path
    beside it. ``writes``: False for a caller that only reads, which neither makes the file nor
    needs to write it (``writable``)."""
    private_directory(path.parent, setting)
    if path.is_dir():  # SQLite would say only "unable to open database file"
        raise InvalidSettings(f"{setting}: {path} is a directory, not a database file")
    lock = path.with_name(path.name + ".migrate.lock")
    if not writes:
        return lock
    writable(path, setting)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))  # empty: a new database
    except FileExistsError:
        _said_if_open_to_others(path)
    except OSError as error:
        raise InvalidSettings(f"{setting}: cannot make {path}: {error.strerror}") from None
    return lock


def writable(database: Path, setting: str) -> None:
    """The SQLite ``database``, the files beside it that exist (``BESIDE``) and its directory,
    where they are made, writable by this process's user, or the start stops naming what is not.
    Served, a database it could not write answered hook calls and lost every card record and
    feedback until shutdown, ``/readyz`` 503 (an operator's review): unlike a database server gone
    away, which comes back, nothing mends it but the operator."""
    directory = database.parent
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InvalidSettings(
            f"{setting}: the user the service runs as cannot write in {directory}, where SQLite makes "
            f"{database.name}-wal and -shm beside the database: give that user write access to the directory"
        )
    for file in (database, *(database.with_name(database.name + end) for end in BESIDE)):
        if file.exists() and not os.access(file, os.W_OK):
            raise InvalidSettings(
                f"{setting}: the user the service runs as cannot write {file}: give that user write access to it "
                "(chown or chmod); `cds-service report` reads a database as it is"
            )


def _said_if_open_to_others(path: Path) -> None:
    """A database made by an earlier release (0644 under the usual umask) is not made private by
    this one: the operator is told how to."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:  # a link to nothing: SQLite says what it finds
        return
    if mode & 0o007:
        log.warning(
            "%s may be read by other users (mode %04o), and so may the -wal and -shm files SQLite makes with its "
            "mode: chmod o-rwx %s*",
            path,
            mode,
            path,
        )


def private_lock(path: Path) -> BinaryIO:
    """The lock file at ``path`` opened to take a ``flock`` on, made ``PRIVATE_FILE`` if missing:
    anyone who may open it may lock it, and hold up the service's start."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE), "ab")


class StoreInUse(Exception):
    """Another process serves the same SQLite file."""


def serve_alone(lock_file: Path, database: str) -> BinaryIO:
    """The SQLite file whose migration lock is ``lock_file`` claimed for this process's ``serve``
    (``quiet``'s kept answers rest on every write being its own): the lock to hold until exit, or
    ``StoreInUse`` if another process serves ``database``. Claimed before it is migrated: a second
    ``serve`` migrated the file under the first (a release before, still serving), then stopped."""
    serving = private_lock(lock_file.with_suffix(".serving"))
    try:
        fcntl.flock(serving, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        serving.close()
        raise StoreInUse(
            f"another process serves {database}: one `cds-service serve` per SQLite "
            "file (for more processes, set CDS_DATABASE_URL to PostgreSQL)"
        ) from None
    return serving
