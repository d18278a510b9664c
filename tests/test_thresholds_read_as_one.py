"""Start-up refuses thresholds the rules cannot honour as documented (an informaticist's audit).

- The ``min_age`` of ``muscle-relaxant-chronic-pain`` and ``muscle-relaxant-class-switch`` decides
  only which drugs their cards advise (they fire at any age): at 70, a 67-year-old was advised
  low-dose amitriptyline, or cyclobenzaprine, which the Beers Criteria say to avoid from 65.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.cli import main
from cds_service.settings import read_settings
from tests.conftest import TODAY, fixture


def _start(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **variables: str) -> tuple[int, str]:
    """``cds-service rules`` started with ``variables`` set: its exit code and what it said on stderr."""
    for name, value in variables.items():
        monkeypatch.setenv(f"CDS_RULES__{name}", value)
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)  # not another test's, cached
    code = main(["rules"])
    return code, capsys.readouterr().err


def _evaluate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, request: dict[str, Any]
) -> dict[str, Any]:
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    assert main(["evaluate", str(path), "--today", TODAY.isoformat()]) == 0
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    return body


@pytest.mark.parametrize(
    ("rule", "request_name", "avoided"),
    [
        ("muscle-relaxant-chronic-pain", "fires-fibromyalgia-baclofen-age-70-no-tricyclic.json", "amitriptyline"),
        ("muscle-relaxant-class-switch", "fires-age-70-names-no-relaxant-v2.json", "tizanidine, an"),
    ],
)
def test_an_advice_age_past_the_beers_65_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    rule: str,
    request_name: str,
    avoided: str,
) -> None:
    variable = f"{rule.upper().replace('-', '_')}__MIN_AGE"
    code, err = _start(monkeypatch, capsys, **{variable: "66"})
    assert code == 2
    assert f"rules.{rule}.min_age: Input should be less than or equal to 65 (set by CDS_RULES__{variable})" in err, err
    # 65 itself, and earlier (a site may be stricter), start; the card advises no drug to avoid.
    for age in ("65", "60"):
        monkeypatch.setenv(f"CDS_RULES__{variable}", age)
        body = _evaluate(monkeypatch, capsys, tmp_path, fixture(f"{rule}/{request_name}"))
        [card] = [c for c in body["cards"] if c["source"]["topic"]["code"] == rule]
        assert avoided not in card["detail"], card["detail"]
