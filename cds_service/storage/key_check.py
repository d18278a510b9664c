"""The patient-id key checked against the database's: stored patients are keyed hashes, so a
process started with another key (a data directory of its own beside a shared PostgreSQL, a
database restored without its key) recognised no stored patient, its snoozes and today's swaps
lost, and started without a word (an operator's review)."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from cds_service.settings import InvalidSettings
from cds_service.storage.schema import patient_key_check

# What the fingerprint is the key's HMAC of: it tells keys apart and gives none of them away.
_FINGERPRINTED = b"cds-service patient-id key check"


def check_patient_key(engine: Engine, key: bytes) -> None:
    """The key's fingerprint recorded by the first process, and every later one's compared with it."""
    fingerprint = hmac.new(key, _FINGERPRINTED, hashlib.sha256).hexdigest()
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
            raise InvalidSettings(
                "the patient-id key is not the one this database's patients were stored with: give every process "
                "the same key (CDS_PATIENT_ID_KEY, or the data directory's patient-id.key), or restore the key "
                "backed up with the database"
            )
        return
