"""Clinical content is checked at start-up: a gap stops the service with the file named."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cds_service.app import create_app
from cds_service.content.cards import CardContentError
from cds_service.content.terminology import TerminologyError
from cds_service.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cards(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(PROJECT_ROOT / "cards", target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "error", "message"),
    [
        (
            "cyclobenzaprine-duration.toml",
            "[variants.duration-unknown]",
            "[variants.renamed]",
            CardContentError,
            "cards/cyclobenzaprine-duration.toml: missing variants ['duration-unknown']",
        ),
        (
            "cyclobenzaprine-duration.toml",
            '"FAIL"]',
            '"FAIL", "NEJM-2031"]',
            CardContentError,
            "cyclobenzaprine-duration.toml: evidence names unknown keys ['NEJM-2031']",
        ),
        (
            "cyclobenzaprine-duration.toml",
            'summary = "Limit cyclobenzaprine to 2–3 weeks: {planned_days} days planned"',
            'summary = "' + "x" * 134 + ' {planned_days}"',
            CardContentError,
            "variants.planned-too-long.summary can reach 140",
        ),
        (
            "cyclobenzaprine-duration.toml",
            'indicator = "info"',
            'indicator = "hard-stop"',
            CardContentError,
            "variants.duration-unknown.indicator must be one of",
        ),
        (
            "refractory-spasm-imaging.toml",
            '"imaging-not-indicated"',
            '"imaging-unheard-of"',
            CardContentError,
            "override_reasons names unknown reasons ['imaging-unheard-of']",
        ),
        (
            "terminology/concepts.toml",
            'display = "Nonalcoholic steatohepatitis (NASH)", source = "clinical-rules.md §4"',
            'display = "Nonalcoholic steatohepatitis (NASH)"',
            TerminologyError,
            "condition.liver-disease code K75.81 has no source",
        ),
        (
            "terminology/concepts.toml",
            '"2.16.840.1.113762.1.4.1248.137"]',
            '"2.16.840.1.113762.1.4.9999"]',
            TerminologyError,
            "names value set 2.16.840.1.113762.1.4.9999",
        ),
        (
            "terminology/concepts.toml",
            '"orphenadrine", "chlorzoxazone",',
            '"orphenadrine", "chlorzoxazone", "unobtainium",',
            TerminologyError,
            "medication.muscle-relaxant names unknown ingredients ['unobtainium']",
        ),
    ],
)
def test_broken_content_stops_start_up(
    cards: Path, tmp_path: Path, file: str, old: str, new: str, error: type[Exception], message: str
) -> None:
    _edit(cards / file, old, new)
    with pytest.raises(error, match=re.escape(message)):
        create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off"))


def test_missing_card_file_stops_start_up(cards: Path, tmp_path: Path) -> None:
    (cards / "refractory-spasm-imaging.toml").unlink()
    with pytest.raises(CardContentError, match="no card text for rule refractory-spasm-imaging"):
        create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off"))


def test_shipped_content_loads(cards: Path, tmp_path: Path) -> None:
    assert create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off")).title
