"""The documentation stays true: the settings table, the add-a-rule checklist, the links."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from cds_service.rules import RULE_MODULES, all_rules
from cds_service.settings_table import settings_table

PROJECT_ROOT = Path(__file__).resolve().parent.parent
README = PROJECT_ROOT / "README.md"
CONFIGURATION = PROJECT_ROOT / "docs" / "configuration.md"
DOCS = [README, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
RULE_IDS = [rule.id for rule in all_rules()]

# [text](target) and [text]: target, outside code; targets with a scheme or only an anchor are not files.
LINK = re.compile(r"\[[^\]]*\]\(\s*(?:<([^>\n]+)>|([^)\s]+))|^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|#)", re.IGNORECASE)


def between(text: str, start: str, end: str) -> str:
    """What lies between the start marker comment (whatever its note) and the end marker."""
    assert start in text and end in text, f"markers {start} … {end} missing"
    return text.split(start, 1)[1].split("-->", 1)[1].split(end, 1)[0].strip()


def test_configuration_doc_table_is_the_settings() -> None:
    section = between(CONFIGURATION.read_text(), "<!-- settings:start", "<!-- settings:end -->")
    assert section == settings_table(), (
        "docs/configuration.md's settings table is out of step with the Field descriptions in "
        "cds_service/settings.py: regenerate it with `.venv/bin/python -m cds_service.settings_table` and paste "
        "the output between <!-- settings:start … --> and <!-- settings:end -->"
    )


def test_every_setting_is_described() -> None:
    from cds_service.settings import Settings

    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_add_a_rule_checklist_holds(rule_id: str) -> None:
    """docs/architecture.md, "How to add a rule": module, card text, fixtures, README row."""
    module = PROJECT_ROOT / "cds_service" / "rules" / f"{rule_id.replace('-', '_')}.py"
    assert module.is_file(), f"{rule_id}: no module {module.relative_to(PROJECT_ROOT)}"
    cards = PROJECT_ROOT / "cards" / f"{rule_id}.toml"
    assert cards.is_file(), f"{rule_id}: no card text {cards.relative_to(PROJECT_ROOT)}"
    fixtures = PROJECT_ROOT / "fixtures" / rule_id
    assert list(fixtures.glob("fires-*.json")), f"{rule_id}: no fixtures/{rule_id}/fires-*.json"
    assert list(fixtures.glob("silent-*.json")), f"{rule_id}: no fixtures/{rule_id}/silent-*.json"
    table = between(README.read_text(), "<!-- rules:start", "<!-- rules:end -->")
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("|")}
    assert rule_id in rows, f"{rule_id}: no row in the README rules table (`cds-service rules --markdown`)"


def test_every_rule_module_is_registered() -> None:
    """A module defining ``RULE`` and missing from ``RULE_MODULES`` would never run, silently."""
    modules = sorted((PROJECT_ROOT / "cds_service" / "rules").glob("*.py"))
    defining = [m.stem for m in modules if re.search(r"^RULE(: Rule)? = Rule\(", m.read_text(), re.MULTILINE)]
    assert sorted(defining) == sorted(RULE_MODULES), (
        "each cds_service/rules/<rule_id>.py defining RULE is listed in RULE_MODULES (cds_service/rules/__init__.py)"
    )
    assert len(defining) == len(RULE_IDS)


def _without_code(text: str) -> str:
    """The Markdown outside fenced code blocks and inline code spans."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def relative_links(path: Path) -> list[str]:
    found = ("".join(groups) for groups in LINK.findall(_without_code(path.read_text())))
    return [target for target in found if not EXTERNAL.match(target)]


def test_the_link_finder_finds_links(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "See [a](docs/a.md#x), [b](<b c.md>), [web](https://x.org), [top](#top).\n"
        "`[not](code.md)`\n```\n[not](fenced.md)\n```\n[ref]: ../ref.md\n"
    )
    assert relative_links(page) == ["docs/a.md#x", "b c.md", "../ref.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_relative_links_point_to_files_in_the_repository(doc: Path) -> None:
    broken = []
    for target in relative_links(doc):
        resolved = (doc.parent / unquote(target.split("#", 1)[0])).resolve()
        if not resolved.exists() or not resolved.is_relative_to(PROJECT_ROOT):
            broken.append(target)
    assert broken == [], f"{doc.relative_to(PROJECT_ROOT)} links to files that are not in the repository"
