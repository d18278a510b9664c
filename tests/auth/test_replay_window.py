"""A token id is remembered for the token's whole life, not less: past the sweep of expired ids
(PostgreSQL) and past a restart (SQLite), a replay later in that life is still refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.auth.conftest import BASE, NOW, call
from tests.conftest import SELECT, Clock
from tests.tokens import SigningKey, claims


def test_a_replay_after_the_sweep_of_expired_ids_is_refused_on_postgresql(
    secure: Callable[..., TestClient],
    es384: SigningKey,
    clock: Clock,
    rejected: Callable[[Any, str], None],
    postgresql_url: str,
) -> None:
    """Expired ids are swept at most once a minute, on a later call: the sweep takes only those
    whose token has expired, so a token used at NOW (exp NOW + 300) is still a replay at NOW + 120."""
    client = secure(database_url=postgresql_url)
    token = es384.sign(claims(BASE + SELECT, NOW))
    assert call(client, token).status_code == 200
    clock.now = NOW + 120  # two minutes on: this call sweeps
    assert call(client, es384.sign(claims(BASE + SELECT, clock.now))).status_code == 200
    rejected(call(client, token), "was already used")


def test_a_replay_after_a_restart_later_in_the_tokens_life_is_refused_on_sqlite(
    secure: Callable[..., TestClient], es384: SigningKey, clock: Clock, rejected: Callable[[Any, str], None]
) -> None:
    """The ids written behind the answers keep their tokens' expiry: the next process, started
    minutes later, still refuses a token that has not expired."""
    token = es384.sign(claims(BASE + SELECT, NOW))  # exp NOW + 300
    first = secure()
    assert call(first, token).status_code == 200
    first.__exit__(None, None, None)  # shut down: what was queued is written
    clock.now = NOW + 200
    rejected(call(secure(), token), "was already used")
