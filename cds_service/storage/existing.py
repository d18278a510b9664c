"""The service's stored data, read as it is: what ``cds-service report`` opens must be the
database and key the service writes, never ones made for the occasion.

Run from another directory, or with one of the service's settings and not the other, the report
made a new database (``CDS_DATA_DIR`` defaults to ``./var``), or the service's tables in an empty
PostgreSQL database, or a new patient-id key beside the real database, and printed "No alerts
were issued in this period": believable, and wrong. ``cds-service migrate`` (or ``serve``) makes
them.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, inspect, select

from cds_service.settings import InvalidSettings, Settings
from cds_service.storage.data_dir import PATIENT_KEY_FILE
from cds_service.storage.engine import database_url, make_engine, named, opening
from cds_service.storage.migrations import SCHEMA_VERSION
from cds_service.storage.schema import schema_version

_RUN_WITH = "run the report with the service's CDS_DATA_DIR (or CDS_DATABASE_URL)"


def require_service_data(settings: Settings) -> None:
    """The database the settings name exists and holds the service's tables, and its patient-id
    key is configured or in the data directory; else ``InvalidSettings`` naming what is missing."""
    parsed = database_url(settings.database)
    if parsed.get_backend_name() == "sqlite":
        path = Path(str(parsed.database)).absolute()
        if not path.exists():
            raise InvalidSettings(f"no database at {path}: {_RUN_WITH}")
        if path.is_dir():
            return  # the store says what it is
    engine = make_engine(parsed, statement_timeout=settings.database_statement_timeout_seconds, read_only=True)
    try:
        with opening(parsed), engine.connect() as connection:
            made = inspect(connection).has_table("schema_version")
            version = connection.execute(select(func.max(schema_version.c.version))).scalar() if made else None
    finally:
        engine.dispose()
    if not made:
        raise InvalidSettings(f"the database {named(parsed)} holds no tables of the service: {_RUN_WITH}")
    if version is not None and version < SCHEMA_VERSION:  # read as it is: migrated, it would refuse its release
        raise InvalidSettings(
            f"the database {named(parsed)} is at schema version {version}, this release's is {SCHEMA_VERSION}: "
            "run the report of the release that serves it, or `cds-service migrate` as the upgrade's step"
        )
    key_file = (settings.data_dir / PATIENT_KEY_FILE).absolute()
    if settings.patient_id_key is None and not key_file.exists():
        raise InvalidSettings(f"no patient-id key at {key_file}: {_RUN_WITH}, or its CDS_PATIENT_ID_KEY")
