"""A site's card folder (``CDS_CARDS_DIR``) rewords the cards: it may not change a variant's
severity nor the one-click choices it offers, and its evidence file may link only to web pages.

An informaticist's audit: a site's MAO inhibitor card file with ``indicator = "info"`` sent a
contraindication as an info card offering "Don't show again for this patient (30 days)", and one
without its ``suggestion`` line lost the "Remove" button; an evidence entry's misspelt ``ulr``
dropped its link, and ``url = "javascript:alert(1)"`` was sent out as a card link.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.cli import main
from cds_service.content.cards import CardContentError
from cds_service.settings import Settings, read_settings
from tests.conftest import NOON, SELECT, Clock, cards_for, fixture

SHIPPED = Path(__file__).resolve().parent.parent / "cards"
PHENELZINE = "cyclobenzaprine-maoi/fires-phenelzine-active.json"
FDA_IR_URL = "https://dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?setid=ec636fad-9537-4001-a691-c7b4cc2b6a96"


def _site_file(tmp_path: Path, name: str, old: str = "", new: str = "") -> Path:
    """A site folder holding the shipped ``name`` with ``old`` (which must be there) made ``new``."""
    site = tmp_path / "site-cards"
    site.mkdir(exist_ok=True)
    text = (SHIPPED / name).read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    (site / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    return site / name


def _start(site: Path, tmp_path: Path) -> TestClient:
    return TestClient(
        create_app(Settings(cards_dir=site, data_dir=tmp_path / "var", auth_mode="off"), clock=Clock(NOON))
    )


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        # The audit's two: a critical card lowered to info, then snoozable and never named critical.
        (
            "cyclobenzaprine-maoi.toml",
            'indicator = "critical"',
            'indicator = "info"',
            'variants.maoi.indicator is "info", the shipped card\'s "critical"',
        ),
        (
            "tizanidine-cyp1a2-inhibitor.toml",
            'indicator = "critical"',
            'indicator = "info"',
            'variants.tizanidine-ordered.indicator is "info", the shipped card\'s "critical"',
        ),
        # Any severity is the specification's: a warning raised or lowered too.
        (
            "cyclobenzaprine-duration.toml",
            'indicator = "warning"',
            'indicator = "info"',
            'variants.planned-too-long.indicator is "info", the shipped card\'s "warning"',
        ),
        (
            "back-pain-red-flag.toml",
            'indicator = "warning"',
            'indicator = "critical"',
            'variants.serious-pathology.indicator is "critical", the shipped card\'s "warning"',
        ),
        # The critical card's one-click "Remove" gone with its line.
        (
            "cyclobenzaprine-maoi.toml",
            'suggestion = "Remove the cyclobenzaprine order"\n',
            "",
            "variants.maoi offers the choices [], the shipped card ['suggestion']",
        ),
        (
            "cyclobenzaprine-older-adult.toml",
            'suggestions = { remove = "Remove the cyclobenzaprine order" }\n',
            "",
            "variants.high-dose offers the choices ['suggestion'], the shipped card ['remove', 'suggestion']",
        ),
        # A choice the shipped card does not offer is not the site's to add either.
        (
            "cyclobenzaprine-maoi.toml",
            "[variants.supply-ended]",
            'suggestions = { remove = "Remove it" }\n\n[variants.supply-ended]',
            "variants.stop-date-unknown offers the choices ['remove'], the shipped card []",
        ),
    ],
)
def test_a_sites_card_file_changing_a_severity_or_a_choice_stops_start_up(
    tmp_path: Path, name: str, old: str, new: str, message: str
) -> None:
    path = _site_file(tmp_path, name, old, new)
    with pytest.raises(CardContentError, match=re.escape(f"{path}: {message}")):
        create_app(Settings(cards_dir=path.parent, data_dir=tmp_path / "var", auth_mode="off"))


def test_the_cli_refuses_the_audits_folder_naming_the_file_and_variant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cds-service rules`` listed the tizanidine rule as info, snoozable."""
    path = _site_file(tmp_path, "tizanidine-cyp1a2-inhibitor.toml", 'indicator = "critical"', 'indicator = "info"')
    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CDS_CARDS_DIR", str(path.parent))
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    code = main(["rules"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"cds-service: invalid clinical content: {path}: variants.tizanidine-ordered.indicator")


def test_a_site_rewords_a_critical_card_and_its_button_keeps_both(tmp_path: Path) -> None:
    path = _site_file(tmp_path, "cyclobenzaprine-maoi.toml", "Remove the cyclobenzaprine order", "Cancel this order")
    with _start(path.parent, tmp_path) as client:
        [card] = cards_for(client.post(SELECT, json=fixture(PHENELZINE)).json(), "cyclobenzaprine-maoi")
    assert card["indicator"] == "critical"
    assert [s["label"] for s in card["suggestions"]] == ["Cancel this order"]
    assert "dont-show-again" not in [reason["code"] for reason in card.get("overrideReasons", [])]


def test_a_site_folder_identical_to_the_shipped_content_starts(tmp_path: Path) -> None:
    site = tmp_path / "site-cards"
    shutil.copytree(SHIPPED, site)
    with _start(site, tmp_path) as client:
        [card] = cards_for(client.post(SELECT, json=fixture(PHENELZINE)).json(), "cyclobenzaprine-maoi")
    assert card["indicator"] == "critical" and len(card["suggestions"]) == 1


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("url = ", "ulr = ", "[ACP] has unknown keys ['ulr'], not one of ('label', 'citation', 'url')"),
        *(
            (FDA_IR_URL, url, f"[FDA-IR].url {url!r} is not an absolute http:// or https:// URL")
            for url in (
                "javascript:alert(1)",
                "data:text/html,<b>x</b>",
                "ftp://example.org/label.pdf",
                "//dailymed.nlm.nih.gov/label",
                "dailymed.nlm.nih.gov/label",
                "https://",
                "https://daily med.nlm.nih.gov/",
                "http://[::1",
            )
        ),
    ],
)
def test_a_sites_evidence_entry_of_an_unknown_key_or_a_link_not_to_the_web_stops_start_up(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = _site_file(tmp_path, "evidence.toml", old, new)
    with pytest.raises(CardContentError, match=re.escape(f"{path}: {message}")):
        create_app(Settings(cards_dir=path.parent, data_dir=tmp_path / "var", auth_mode="off"))


def test_a_sites_evidence_may_link_its_own_web_page(tmp_path: Path) -> None:
    url = "http://intranet.example.org/formulary/cyclobenzaprine"
    path = _site_file(tmp_path, "evidence.toml", FDA_IR_URL, url)
    with _start(path.parent, tmp_path) as client:
        [card] = cards_for(client.post(SELECT, json=fixture(PHENELZINE)).json(), "cyclobenzaprine-maoi")
    assert {"label": "FDA label: cyclobenzaprine tablets", "url": url, "type": "absolute"} in card["links"]
