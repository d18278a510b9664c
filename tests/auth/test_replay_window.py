"""A token id is remembered for the token's whole life, not less: past the sweep of expired ids
(PostgreSQL) and past a restart (SQLite), a replay later in that life is still refused. Nor
much more: once the token has expired, its id is swept out of the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.auth.conftest import BASE, NOW, call
from tests.conftest import SELECT, Clock
from tests.feedback_calls import database_rows
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


def test_a_replay_in_the_last_minute_of_its_leeway_is_refused_after_a_sweep_on_postgresql(
    secure: Callable[..., TestClient],
    es384: SigningKey,
    clock: Clock,
    rejected: Callable[[Any, str], None],
    postgresql_url: str,
) -> None:
    """The sweep takes the ids whose token has expired, leeway and all (exp + 30 s), and no
    other: one that swept a minute ahead let a token used at NOW be replayed at NOW + 320, ten
    seconds before it stops passing."""
    client = secure(database_url=postgresql_url)
    token = es384.sign(claims(BASE + SELECT, NOW))  # exp NOW + 300: passes until NOW + 330
    assert call(client, token).status_code == 200
    clock.now = NOW + 320
    assert call(client, es384.sign(claims(BASE + SELECT, clock.now))).status_code == 200  # this call sweeps
    rejected(call(client, token), "was already used")


@pytest.mark.parametrize("later", [200, 320])
def test_a_replay_after_a_restart_later_in_the_tokens_life_is_refused_on_sqlite(
    secure: Callable[..., TestClient],
    es384: SigningKey,
    clock: Clock,
    rejected: Callable[[Any, str], None],
    later: int,
) -> None:
    """The ids written behind the answers keep their tokens' expiry: the next process, started
    minutes later, still refuses a token that has not expired, and reads back every id whose
    token still passes, to the last seconds of its leeway (320 s: not only those with a minute left)."""
    token = es384.sign(claims(BASE + SELECT, NOW))  # exp NOW + 300: passes until NOW + 330
    first = secure()
    assert call(first, token).status_code == 200
    first.__exit__(None, None, None)  # shut down: what was queued is written
    clock.now = NOW + later
    rejected(call(secure(), token), "was already used")


def test_expired_token_ids_are_swept_out_of_the_database(
    secure: Callable[..., TestClient], es384: SigningKey, clock: Clock, postgresql_url: str
) -> None:
    """Every call's token id is stored: kept past its token's life, the table would grow for ever.
    A call after the first token stopped passing sweeps its id out, and keeps its own."""
    client = secure(database_url=postgresql_url)
    assert call(client, es384.sign(claims(BASE + SELECT, NOW, jti="first"))).status_code == 200
    clock.now = NOW + 400  # the first token stopped passing at NOW + 330
    assert call(client, es384.sign(claims(BASE + SELECT, clock.now, jti="second"))).status_code == 200
    assert database_rows(postgresql_url, "SELECT jti FROM seen_tokens") == [("second",)]
