"""What a card offering an update adds of the draft's words the update leaves out is card text:
it lives in ``cards/update-notes.toml`` with the rest (it was written into the Python), so a site
rewords it as it rewords a card, in a file of its own, and a note naming a fact it lacks, or
missing, stops start-up naming the file, as a card's text does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.content.cards import CardContentError
from cds_service.settings import Settings
from tests.conftest import NOON, Clock, answered, cards_for, fixture

NOTES = Path(__file__).resolve().parent.parent / "cards" / "update-notes.toml"
# Sig text beside a dose change: the words left out of the update.
PRN = "multiple-rules/prn-1-2-tablets-every-4-6-hours-40-dispensed-quantity-never-raised.json"
# "Tonmya 2.8 mg SL" beside the 10 mg component's code: the 21-day update drops the name.
TONMYA = "cyclobenzaprine-hepatic-impairment/fires-warning-10mg-component-beside-tonmya-words.json"


def site_with(tmp_path: Path, *rewordings: tuple[str, str]) -> Path:
    """A site's folder holding only its own ``update-notes.toml``, the shipped one reworded."""
    site = tmp_path / "site-cards"
    site.mkdir()
    text = NOTES.read_text(encoding="utf-8")
    for old, new in rewordings:
        assert old in text
        text = text.replace(old, new, 1)
    (site / "update-notes.toml").write_text(text, encoding="utf-8")
    return site


def test_a_sites_notes_are_shown_on_its_cards(tmp_path: Path) -> None:
    brand_name = NOTES.read_text(encoding="utf-8").split("brand-name-left-out = ")[1]
    site = site_with(
        tmp_path,
        ("Accepting a change leaves out", "Site: accepting a change leaves out"),
        (brand_name, '"Site: {brand} goes."\n'),
    )
    app = create_app(Settings(cards_dir=site, data_dir=tmp_path / "var", auth_mode="off"), clock=Clock(NOON))
    with TestClient(app) as client:
        prn = [card["detail"] for card in answered(client, fixture(PRN))["cards"] if card.get("suggestions")]
        [duration] = cards_for(answered(client, fixture(TONMYA)), "cyclobenzaprine-duration")
    assert prn and any("Site: accepting a change leaves out the order's sig text" in detail for detail in prn), prn
    assert "\n\nSite: Tonmya goes.\n\n" in duration["detail"], duration["detail"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("re-enter any that still apply", "re-enter {dose}", "words-left-out names ['dose'], which this note does not"),
        ("drops {said} from", "drops {brand_said} from", "brand-left-out names ['brand_said']"),
        ("sublingual-left-out = ", "sublingual-left-ot = ", "missing notes ['sublingual-left-out']"),
        ("brand-name-left-out = ", "brand-name-left-out = 3\nx = ", "unknown notes ['x']"),
    ],
)
def test_a_note_that_cannot_be_shown_stops_start_up_naming_the_file(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    site = site_with(tmp_path, (old, new))
    with pytest.raises(
        CardContentError, match=re.escape(f"{site / 'update-notes.toml'}: ") + ".*" + re.escape(message)
    ):
        create_app(Settings(cards_dir=site, data_dir=tmp_path / "var", auth_mode="off"))


def test_a_note_that_is_no_text_stops_start_up_naming_the_file(tmp_path: Path) -> None:
    brand_name = NOTES.read_text(encoding="utf-8").split("brand-name-left-out = ")[1]
    site = site_with(tmp_path, (brand_name, "3\n"))
    with pytest.raises(CardContentError, match=re.escape(f"{site / 'update-notes.toml'}: brand-name-left-out must be")):
        create_app(Settings(cards_dir=site, data_dir=tmp_path / "var", auth_mode="off"))
