"""Card records are written behind the answers (``storage.writer``); what reads them back waits
for the records queued before it, never for a lull in the traffic."""

from __future__ import annotations

import threading
from collections.abc import Callable

import requests

from cds_service.app import create_app
from cds_service.pipeline.knowledge import Knowledge
from cds_service.settings import Settings
from tests.conftest import NOON, SELECT, Clock, fixture
from tests.serving import serve_in_thread

LOAD_THREADS = 4
# Each load thread stops by itself after this many calls: the bound on the test, should the read
# wait for the load to end (as it did: under `make bench`'s load, analytics waited 6 s).
CALLS_PER_THREAD = 400


def test_analytics_answers_while_hook_calls_keep_coming_and_counts_every_card_before_it(
    settings: Settings, knowledge_for: Callable[[Settings], Knowledge | None]
) -> None:
    changed = settings.model_copy(update={"auth_mode": "off"})
    app = create_app(changed, knowledge=knowledge_for(changed), clock=Clock(NOON))
    order = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    answered = [0] * LOAD_THREADS
    started = threading.Barrier(LOAD_THREADS + 1)
    stop = threading.Event()

    with serve_in_thread(app) as base:

        def load(index: int) -> None:
            with requests.Session() as session:
                for call in range(CALLS_PER_THREAD):
                    if stop.is_set():
                        return
                    assert session.post(f"{base}{SELECT}", json=order, timeout=30).status_code == 200
                    answered[index] += 1
                    if call == 20:
                        started.wait(timeout=30)

        threads = [threading.Thread(target=load, args=(index,), daemon=True) for index in range(LOAD_THREADS)]
        for thread in threads:
            thread.start()
        started.wait(timeout=30)  # every thread has had 20 cards answered: the writer is busy
        before = sum(answered)
        response = requests.get(f"{base}/analytics", timeout=120)
        load_still_running = any(thread.is_alive() for thread in threads)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    assert response.status_code == 200, response.text
    assert load_still_running, "analytics answered only once the hook calls had stopped"
    # One card a call (the 30-day supply), every call answered before the read written before it.
    assert response.json()["totals"]["cards_shown"] >= before
