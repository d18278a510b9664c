"""What stored feedback silences for a patient (``Store.quiet``): the read, and its answers kept
per patient for as long as nothing it read can have changed.

Every hook call with a card reads what stored feedback silences for its patient: the read cost
more than the rules that made the card (issue 17). The answer changes only when feedback is
written, when a card is issued to that patient (order-sign does not repeat what order-select
showed today: only for the answers that count that service's cards), at midnight (the store's
"today"), and when a snooze it found runs out.

Every write that changes an answer drops what it changes here. On SQLite that is all of them:
the file is one serving process's own (``serve`` refuses more workers on it, and a second
``serve`` on the same file: ``Store.claim``). On PostgreSQL other processes write too: answers
are kept only while this process hears their writes (``storage.changes``), and read on every
call while it does not.

A read that overlaps a write must not keep what it read before the write: ``generation`` is
taken before reading and an answer is kept only if no write has been noted since.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection

from cds_service.content.cards import OVERRIDE_REASON_SYSTEM, QUIETABLE, SNOOZE_REASON
from cds_service.storage.keyed import as_keyed, keys_after
from cds_service.storage.offered import suggestion_ids, unoffered
from cds_service.storage.quiet_statements import FEEDBACK_OF_PATIENT, LATEST_OF_ITS_CLIENT, SHOWN_TO_PATIENT
from cds_service.storage.records import Owner, Quiet
from cds_service.storage.schema import as_utc

# Patients whose answers are kept: each a few hundred bytes.
PATIENTS = 10_000

# Who asks: the client (None with authentication off), and the services whose cards shown today count.
_Asked = tuple[Owner | None, tuple[str, ...]]


class QuietCache:
    def __init__(self, size: int = PATIENTS, *, keeping: bool = True) -> None:
        self._size = size
        self._keeping = keeping  # False: every write is not heard here, so nothing is kept
        # patient key → (the client, the services whose cards shown today count) → (answer, kept until)
        self._answers: dict[str, dict[_Asked, tuple[Quiet, datetime]]] = {}
        self._generation = 0
        self._lock = threading.Lock()  # cards are written from the store's writer thread

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, patient: str, asked: _Asked, now: datetime) -> Quiet | None:
        with self._lock:
            kept = self._answers.get(patient, {}).get(asked)
        if kept is None or now >= kept[1]:
            return None
        return kept[0]

    def keep(self, patient: str, asked: _Asked, quiet: Quiet, *, until: datetime, generation: int) -> None:
        """Keep an answer read at ``generation`` until ``until``, unless a write came since."""
        with self._lock:
            if generation != self._generation or not self._keeping:
                return
            if patient not in self._answers and len(self._answers) >= self._size:
                del self._answers[next(iter(self._answers))]  # the oldest patient
            self._answers.setdefault(patient, {})[asked] = (quiet, until)

    def suspend(self) -> None:
        """Other processes' writes are not heard from now on: keep nothing, every call reads."""
        self._keep_from_now(False)

    def resume(self) -> None:
        """Every write is heard from now on (not those before: what was kept goes)."""
        self._keep_from_now(True)

    def _keep_from_now(self, keeping: bool) -> None:
        with self._lock:
            self._keeping = keeping
            self._generation += 1
            self._answers.clear()

    def forget(self, patients: set[str] | None = None, *, shown_by: str | None = None) -> None:
        """After a write: the answers of these patients (every answer, for None) are read again;
        with ``shown_by`` (a service whose cards were issued), only the answers that count them."""
        with self._lock:
            self._generation += 1
            if patients is None:
                self._answers.clear()
                return
            for patient in patients:
                if shown_by is None:
                    self._answers.pop(patient, None)
                    continue
                answers = self._answers.get(patient, {})
                for asked in [asked for asked in answers if shown_by in asked[1]]:
                    del answers[asked]


def read_quiet(
    connection: Connection,
    patient: str,
    asked: _Asked,
    now: datetime,
    snooze_days: dict[str, int],
    zone: tzinfo = UTC,
    *,
    pseudonym: Callable[[str], str],
) -> tuple[Quiet, datetime]:
    """The answer from the database, and until when it holds: midnight, or the end of the first
    snooze it found (``Store.quiet`` says what silences what). Only the cards issued to the
    asking client count: a patient id is one EHR's (with authentication off, every card counts)."""
    owner, services = asked
    scope = {"issuer": owner.issuer, "tenant": owner.tenant} if owner else {}
    # The site's day (CDS_TIMEZONE): order-sign's "same day" and the swap's rest of the day.
    day = now.astimezone(zone).date()
    today = datetime.combine(day, time.min, zone).astimezone(UTC)
    since = min(today, now - timedelta(days=max([0, *snooze_days.values()])))
    until = datetime.combine(day + timedelta(days=1), time.min, zone).astimezone(UTC)
    swapped: set[tuple[str, str]] = set()
    snoozed: set[tuple[str, frozenset[str] | None, str]] = set()
    read = {"patient": patient, "since": since, "today": today, **scope}
    # Its rows all read first: a card another client's item came last for asks again (the same connection).
    for row in connection.execute(FEEDBACK_OF_PATIENT[owner is not None], read).all():
        if row.kind == "swap":  # accepted today
            # keys_after's ids are suggestions the card offered: one it did not swaps nothing (storage.offered).
            after = keys_after(row.keys_after, row.keyed, pseudonym)
            swapped.update((row.rule_id, after[uuid]) for uuid in _accepted(row.accepted_suggestions) if uuid in after)
            continue
        days = snooze_days.get(row.rule_id, 0)
        # No indicator (a card stored before version 2, perhaps critical): it snoozes nothing. Its
        # indicator bounds the cards it silences: an info card's, not its rule's warnings (``Quiet.snoozes``).
        if not days or row.indicator not in QUIETABLE:
            continue
        latest = _latest_of_its_client(connection, row)
        # Only the card's latest item says what the clinician chose: a "don't show again" since
        # corrected (another reason, an acceptance) snoozes nothing, a correction to it snoozes.
        if latest is None or not _snoozes(latest, patient):
            continue
        at = as_utc(latest.received_at)
        if at > now - timedelta(days=days):  # [override, +days): over at +days
            snoozed.add((row.rule_id, _subject(row.subject), row.indicator))
            until = min(until, at + timedelta(days=days))
    where: dict[str, object] = {"patient": patient, "today": today, **scope}
    shown = _shown_today(connection, where, services, pseudonym) if services else frozenset()
    return Quiet(frozenset(swapped), frozenset(snoozed), shown, pseudonym), until


def _shown_today(
    connection: Connection, where: dict[str, object], services: tuple[str, ...], pseudonym: Callable[[str], str]
) -> frozenset[str]:
    """Draft hashes (keyed) of the non-critical cards ``services`` showed this patient today,
    less those of which any card was accepted naming a suggestion its card offered
    (``storage.offered``): that suggestion, not applied, must come back. An acceptance naming
    none is refused at arrival, and the card is then not repeated: so too when it was stored
    unchecked (before the card's record), or order-sign would answer as the race between the
    two writes went. Another client's feedback is about no card of this one's
    (``from_its_client``): its acceptance brings nothing back. A card an older release stored
    beside this one's is the same card once keyed. One statement, a row per card and acceptance of it: the acceptances'
    suggestions were a third statement of the read."""
    indicators: dict[str, set[str]] = {}
    accepted: set[str] = set()
    for row in connection.execute(SHOWN_TO_PATIENT["issuer" in where], {**where, "services": list(services)}):
        key = as_keyed(row.draft_hash, row.keyed, pseudonym)
        assert key is not None  # the statement asks for stored hashes only
        indicators.setdefault(key, set()).add(row.indicator)
        if row.outcome == "accepted" and not unoffered(row.accepted_suggestions, row.suggestions):
            accepted.add(key)
    return frozenset(k for k, shown in indicators.items() if k not in accepted and shown <= QUIETABLE)


def _latest_of_its_client(connection: Connection, row: Any) -> Any:
    """The latest item of the card's client's about it (``from_its_client``: another's, stored by
    an older release with the card's patient, snoozed that client's patient): the card's latest,
    unless another client's item came last (its uuid leaked, or guessed)."""
    if (row.issuer, row.tenant) == (row.card_issuer, row.card_tenant):
        return row
    asked = {"card": row.card, "issuer": row.card_issuer, "tenant": row.card_tenant}
    return connection.execute(LATEST_OF_ITS_CLIENT, asked).one_or_none()


def _snoozes(latest: Any, patient: str) -> bool:
    """A card's latest item is the patient's "don't show again", by the reason's own system or none."""
    return (
        latest.patient_key == patient
        and latest.outcome == "overridden"
        and latest.override_code == SNOOZE_REASON
        and latest.override_system in (None, OVERRIDE_REASON_SYSTEM)
    )


def _subject(stored: str | None) -> frozenset[str] | None:
    """A card's subject as stored (a JSON list); None for a card that kept none: its rule's
    cards name nothing else, or an older release stored it (``Quiet.snoozes``)."""
    return frozenset(json.loads(stored)) if stored is not None else None


def _accepted(accepted_suggestions: str | None) -> list[Any]:
    """The suggestion uuids a feedback item accepted, in lower case as ``keys_after`` names them
    (the service issues them so): one an earlier release stored as sent, in upper case, quiets its
    rule too (``storage.offered``)."""
    return (suggestion_ids(accepted_suggestions) or []) if accepted_suggestions else []
