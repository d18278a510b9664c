"""A site's own ``terminology/`` folder (CDS_CARDS_DIR) replaces the shipped code lists whole, a
documented choice; but a copy of a concept file or a value set that leaves out the heart failure
or cauda equina codes silenced critical cards with no word at start-up. Each shipped concept the
folder recognises less of is now said at every start, as a local codes exclusion is; a copy
identical to the shipped one, or one that only adds, says nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cds_service.cli import main
from cds_service.content import content_dir
from cds_service.settings import read_settings

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
HEART_FAILURE = "2.16.840.1.113883.3.526.3.376.json"


def _site(tmp_path: Path) -> Path:
    """A card folder holding a copy of the shipped terminology."""
    shutil.copytree(str(content_dir() / "terminology"), tmp_path / "cards" / "terminology")
    return tmp_path / "cards" / "terminology"


def _cautions(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], folder: Path) -> list[str]:
    monkeypatch.setenv("CDS_CARDS_DIR", str(folder.parent))
    monkeypatch.setenv("CDS_TIMEZONE", "UTC")
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    status = main(["rules"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return [line for line in captured.out.splitlines() if line.startswith("caution:")]


def test_a_site_copy_identical_to_the_shipped_one_says_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cautions(monkeypatch, capsys, _site(tmp_path)) == []


def test_a_site_copy_that_only_adds_says_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _site(tmp_path)
    back = folder / "concepts" / "back.toml"
    shipped = (
        f'{{ system = "{ICD10}", code = "G83.4", display = "Cauda equina syndrome", source = "clinical-rules.md §4" }},'
    )
    added = f'{{ system = "{ICD10}", code = "G95.89", source = "site" }},'
    back.write_text(back.read_text(encoding="utf-8").replace(shipped, shipped + "\n  " + added), encoding="utf-8")
    assert _cautions(monkeypatch, capsys, folder) == []


def test_a_concept_file_leaving_out_a_critical_prefix_is_a_caution(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cauda equina's one shipped prefix narrowed to one code under it: G83.4 itself no longer
    recognised (still started: replacing the lists whole is the site's to choose)."""
    folder = _site(tmp_path)
    back = folder / "concepts" / "back.toml"
    back.write_text(
        back.read_text(encoding="utf-8").replace('code = "G83.4", display', 'code = "G83.41", display'),
        encoding="utf-8",
    )
    assert _cautions(monkeypatch, capsys, folder) == [
        f"caution: site terminology {back}: condition.cauda-equina: leaves out 1 of the 1 codes and prefixes "
        "the shipped concept lists (G83.4); the rules reading it no longer see them (docs/configuration.md#card-text)"
    ]


def test_a_value_set_leaving_out_the_icd10_heart_failure_codes_is_a_caution(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Heart failure is its value set alone: a site copy of it without ICD-10-CM's codes."""
    folder = _site(tmp_path)
    valueset = folder / "valuesets" / HEART_FAILURE
    data = json.loads(valueset.read_bytes())
    contains = data["expansion"]["contains"]
    icd10 = {c["code"] for c in contains if c["system"] == ICD10}
    data["expansion"]["contains"] = [c for c in contains if c["system"] != ICD10]
    valueset.write_text(json.dumps(data), encoding="utf-8")
    [said] = _cautions(monkeypatch, capsys, folder)
    assert said.startswith(
        f"caution: site terminology {folder / 'concepts' / 'cardiac.toml'}: condition.heart-failure: "
        f"leaves out {len(icd10)} of the {len({(c['system'], c['code']) for c in contains})} codes and prefixes the shipped concept lists (I"
    )
    assert icd10 and "; the rules reading it no longer see them" in said
