"""The patient-id key checked against the database's: stored patients are keyed hashes, so a
process started with another key (a data directory of its own beside a shared PostgreSQL, a
database restored without its key) recognised no stored patient, its snoozes and today's swaps
lost, and started without a word (an operator's review)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import IntegrityError

from cds_service.settings import InvalidSettings
from cds_service.storage.data_dir import writable
from cds_service.storage.engine import make_engine, named, opening
from cds_service.storage.schema import patient_key_check

# What the fingerprint is the key's HMAC of: it tells keys apart and gives none of them away.
_FINGERPRINTED = b"cds-service patient-id key check"
_ANOTHER_KEY = (
    "the patient-id key is not the one this database's patients were stored with: give every process "
    "the same key (CDS_PATIENT_ID_KEY, or the data directory's patient-id.key), or restore the key "
    "backed up with the database"
)


def _fingerprint(key: bytes) -> str:
    return hmac.new(key, _FINGERPRINTED, hashlib.sha256).hexdigest()


def refuse_another_key(engine: Engine, key: bytes) -> None:
    """Before migrating: a database that recorded another key's fingerprint stops the start as
    it was. Refused only after, an older release's database was left at this release's schema,
    which that release, with the right key, would not start on."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(patient_key_check.name):
            return  # older than the fingerprint (schema 10), or new: recorded after migrating
        stored = connection.execute(select(patient_key_check.c.fingerprint)).scalar()
    if stored is not None and not hmac.compare_digest(stored, _fingerprint(key)):
        raise InvalidSettings(_ANOTHER_KEY)


def check_patient_key(engine: Engine, key: bytes) -> None:
    """The key's fingerprint recorded by the first process, and every later one's compared with it."""
    fingerprint = _fingerprint(key)
    for _ in range(2):  # two first processes at once: one inserts, the other reads it
        with engine.begin() as connection:
            stored = connection.execute(select(patient_key_check.c.fingerprint)).scalar()
        if stored is None:
            try:
                with engine.begin() as connection:
                    connection.execute(insert(patient_key_check), {"id": 1, "fingerprint": fingerprint})
                return
            except IntegrityError:
                continue
        if not hmac.compare_digest(stored, fingerprint):
            raise InvalidSettings(_ANOTHER_KEY)
        return


def refuse_a_lost_key(parsed: URL, key_file: Path, *, setting: str, statement_timeout: float) -> None:
    """Before a key is made into ``key_file``: a database that recorded one's fingerprint stops the
    start (``InvalidSettings``), its key lost (restored without it, a data directory of its own).
    Refused only after the new key was made, that start left it behind: a data directory that
    was not there, a key the operator then had to find and delete before restoring theirs.
    ``setting``: what names a SQLite file, refused first as the store would if it cannot write it."""
    if parsed.get_backend_name() == "sqlite":
        path = Path(str(parsed.database))
        if not path.is_file():
            return  # none yet (made after the key), or a directory (the store says so)
        writable(path, setting)
    engine = make_engine(parsed, statement_timeout=statement_timeout, read_only=True)
    try:
        with opening(parsed), engine.connect() as connection:
            recorded = inspect(connection).has_table(patient_key_check.name) and (
                connection.execute(select(patient_key_check.c.fingerprint)).first() is not None
            )
    finally:
        engine.dispose()
    if recorded:
        raise InvalidSettings(
            f"no patient-id key: CDS_PATIENT_ID_KEY is unset and {key_file} is missing, but the database "
            f"{named(parsed)} holds patients stored with one: restore the key backed up with the database "
            "(or set CDS_PATIENT_ID_KEY to it); a new key would recognise none of them"
        )
