"""The replay cache: client JWT ids seen, kept until the token expires, so a replayed token is
refused by every process that shares the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select

from cds_service.storage.rows import insert_rows
from cds_service.storage.schema import as_utc, seen_tokens
from cds_service.storage.store import Store
from cds_service.storage.text import storable

# How often expired token ids are swept out.
_SWEEP_EVERY = timedelta(minutes=1)


class ReplayCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._swept_at = datetime.min.replace(tzinfo=UTC)

    def unexpired(self, now: datetime) -> list[tuple[str, str, datetime]]:
        """Every token id not yet expired: (issuer, jti, expiry)."""
        query = select(seen_tokens.c.issuer, seen_tokens.c.jti, seen_tokens.c.expires_at)
        with self._store.engine.connect() as connection:
            rows = connection.execute(query.where(seen_tokens.c.expires_at >= now)).all()
        return [(row.issuer, row.jti, as_utc(row.expires_at)) for row in rows]

    def record(self, tokens: list[tuple[str, str, datetime]], *, now: datetime) -> None:
        """Token ids already checked (by this process's memory), stored in one transaction."""
        with self._store.writing() as connection:
            self._sweep(connection, now)
            rows = [{"issuer": storable(i), "jti": storable(j), "expires_at": e} for i, j, e in tokens]
            insert_rows(connection, seen_tokens, rows)

    def _sweep(self, connection: Connection, now: datetime) -> None:
        if now - self._swept_at > _SWEEP_EVERY:
            connection.execute(seen_tokens.delete().where(seen_tokens.c.expires_at < now))
            self._swept_at = now

    def first_use(self, issuer: str, jti: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record a token id; False when it was already recorded (a replay) and has not expired."""
        with self._store.writing() as connection:
            self._sweep(connection, now)
            inserted = connection.execute(
                self._store.insert(seen_tokens).on_conflict_do_nothing().returning(seen_tokens.c.jti),
                {"issuer": storable(issuer), "jti": storable(jti), "expires_at": expires_at},
            ).all()
            return len(inserted) == 1
