"""The data directory's own files: made private, and the patient-id key kept in it.

Either failing (the directory a file, not writable; the key not readable, or empty) stops the
start in one line naming what (``InvalidSettings``), not a traceback.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cds_service.settings import InvalidSettings

# The data directory, when the service makes it: no other user may enter it, so its files (feedback's
# comments in the database and its write-ahead log, the patient-id key) are the service user's
# alone whatever the umask lets them be. (Missing parents are made as the umask says.)
PRIVATE_DIRECTORY = 0o700


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
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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
