"""The replay cache: client JWT ids seen, kept until the token expires, so a replayed token is
refused by every process that shares the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cds_service.storage.schema import seen_tokens
from cds_service.storage.store import Store
from cds_service.storage.text import storable

# How often expired token ids are swept out.
_SWEEP_EVERY = timedelta(minutes=1)


class ReplayCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._swept_at = datetime.min.replace(tzinfo=UTC)

    def first_use(self, issuer: str, jti: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record a token id; False when it was already recorded (a replay) and has not expired."""
        with self._store.writing() as connection:
            if now - self._swept_at > _SWEEP_EVERY:
                connection.execute(seen_tokens.delete().where(seen_tokens.c.expires_at < now))
                self._swept_at = now
            inserted = connection.execute(
                self._store.insert(seen_tokens).on_conflict_do_nothing().returning(seen_tokens.c.jti),
                {"issuer": storable(issuer), "jti": storable(jti), "expires_at": expires_at},
            ).all()
            return len(inserted) == 1
