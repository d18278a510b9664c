"""Clinical content is checked at start-up: a gap stops the service with the file named."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.content import content_dir
from cds_service.content.cards import CardContentError
from cds_service.content.terminology import Terminology, TerminologyError, load_terminology
from cds_service.fhir.coding import RXNORM, Code
from cds_service.pipeline import evaluate
from cds_service.pipeline.cards import NO_CHANGE, render
from cds_service.rules import Finding, all_rules
from cds_service.settings import Settings
from tests.conftest import NOON, SELECT, Clock, fixture
from tools.golden import answer, hook_requests, service

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
        # A variant the rule never produces: its text would never show (an informaticist's review).
        (
            "cyclobenzaprine-duration.toml",
            "[variants.duration-unknown]",
            '[variants.over-a-month]\nindicator = "info"\nsummary = "s"\ndetail = "d"\n\n[variants.duration-unknown]',
            CardContentError,
            "cards/cyclobenzaprine-duration.toml: variants ['over-a-month'] are not the rule's (it has planned-too-long,",
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
            'indicator = "info"',
            'indicator = "hard-stop"',
            CardContentError,
            "variants.duration-unknown.indicator must be one of",
        ),
        # A variant citing a key its file does not list: dropped silently, the card lost a citation.
        (
            "muscle-relaxant-chronic-pain.toml",
            'evidence = ["FAIL"]',
            'evidence = ["FAIL", "FDA-IR"]',
            CardContentError,
            "variants.myofascial-pain.evidence names keys not in the file's ['FDA-IR']",
        ),
        # The snooze reason must say how long it lasts; another placeholder failed the hook call.
        (
            "override-reasons.toml",
            "for this patient ({days})",
            "for this patient",
            CardContentError,
            "override-reasons.toml: [dont-show-again] needs a display with {days}",
        ),
        (
            "override-reasons.toml",
            "for this patient ({days})",
            "for this patient ({days}, {weeks})",
            CardContentError,
            "override-reasons.toml: [dont-show-again] needs a display with {days}",
        ),
        (
            "refractory-spasm-imaging.toml",
            '"imaging-not-indicated"',
            '"imaging-unheard-of"',
            CardContentError,
            "override_reasons names unknown reasons ['imaging-unheard-of']",
        ),
        # A range with no source, or a concept defined in two files (which one won?), went unchecked.
        (
            "terminology/concepts/back.toml",
            'display = "Lumbar and lumbar-sacral orthoses", source = "clinical-rules.md §4" }',
            'display = "Lumbar and lumbar-sacral orthoses" }',
            TerminologyError,
            "procedure.lumbar-orthosis range L0625 has no source",
        ),
        (
            "terminology/concepts/back.toml",
            "[condition.muscle-spasm]",
            "[condition.urinary-retention]",
            TerminologyError,
            "back.toml: condition.urinary-retention is already defined in another file",
        ),
        (
            "terminology/concepts.toml",
            'strength_mg = 2.8, source = "clinical-rules.md §4 and the FDA label (FDA-SL)"',
            "strength_mg = 2.8",
            TerminologyError,
            "brands.Tonmya has no source",
        ),
        (
            "terminology/concepts.toml",
            'product_valuesets = ["2.16.840.1.113883.3.464.1003.1062"]',
            'product_valuesets = ["2.16.840.1.113762.1.4.9999"]',
            TerminologyError,
            "medication.muscle-relaxant names value set 2.16.840.1.113762.1.4.9999",
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


def _set(path: Path, variant: str, field: str, value: str) -> None:
    """``field`` of ``[variants.<variant>]`` set to ``value``, whatever the shipped text says."""
    text = path.read_text()
    start = text.index(f"[variants.{variant}]")
    line = re.compile(rf'^{field} = (""".*?"""|".*?")$', re.M | re.S).search(text, start)
    assert line is not None, f"no {field} in [variants.{variant}] of {path.name}"
    path.write_text(text[: line.start()] + f"{field} = {value}" + text[line.end() :])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("summary", '"' + "x" * 134 + ' {planned_days}"', "variants.planned-too-long.summary can reach 140"),
        (
            "summary",
            '"Limit cyclobenzaprine: {planed_days} days planned"',
            "cards/cyclobenzaprine-duration.toml: variants.planned-too-long.summary names {planed_days}, "
            "which this card does not have (it has: {duration_basis}, {kept}, {limit_days}, {limit_said}, {planned_days}",
        ),
        ("detail", '"{planned_days days planned"', "variants.planned-too-long.detail: expected '}' before end"),
        ("detail", '"{planned_days.real} days planned"', "{planned_days.real} is not a plain placeholder"),
        ("suggestion", '"Limit to {suggested_days:>40} days"', "suggestion: {suggested_days:>40} is not a plain"),
        ("suggestion", '"Limit to {suggested_days!r} days"', "suggestion: {suggested_days!r} is not a plain"),
    ],
)
def test_card_text_naming_what_the_card_lacks_stops_start_up(
    cards: Path, tmp_path: Path, field: str, value: str, message: str
) -> None:
    """A misspelt placeholder would have failed every hook call the card fires on (a 500, and
    every other card of the call lost): an informaticist editing text finds out at start-up."""
    _set(cards / "cyclobenzaprine-duration.toml", "planned-too-long", field, value)
    with pytest.raises(CardContentError, match=re.escape(message)):
        create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off"))


@pytest.mark.parametrize(("filler", "starts"), [(128, True), (129, False)])
def test_a_summary_must_stay_under_140_characters_at_its_widest(
    cards: Path, tmp_path: Path, filler: int, starts: bool
) -> None:
    """Clinical specification §2: "summary under 140 characters". With its fact at its widest
    (a date, "2026-11-21"), 139 characters start and 140 do not."""
    _set(cards / "cyclobenzaprine-duration.toml", "planned-too-long", "summary", f'"{"x" * filler} {{planned_days}}"')
    settings = Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off")
    if starts:
        create_app(settings)
    else:
        with pytest.raises(CardContentError, match=re.escape("variants.planned-too-long.summary can reach 140")):
            create_app(settings)


def test_a_misspelt_choice_of_suggestion_stops_start_up(cards: Path, tmp_path: Path) -> None:
    """It dropped its one-click action (remove the order) without a word."""
    path = cards / "cyclobenzaprine-duration.toml"
    path.write_text(path.read_text().replace("suggestions = { remove =", "suggestions = { remvoe =", 1))
    with pytest.raises(CardContentError, match=re.escape("suggestions has ['remvoe'], not one of ('remove',)")):
        create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off"))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # The card kept its warning and lost its "Limit to 21 days" button.
        ('suggestion = "Limit to', 'sugestion = "Limit to', "has unknown keys ['sugestion']"),
        # The card offered "don't show again" alone: its three clinical reasons were gone.
        ("override_reasons = [", "override_reason = [", "unknown keys ['override_reason']"),
    ],
)
def test_a_misspelt_key_in_a_sites_card_file_stops_start_up_naming_that_file(
    cards: Path, tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = cards / "cyclobenzaprine-duration.toml"
    _edit(path, old, new)
    with pytest.raises(CardContentError) as raised:
        create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off"))
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


def test_a_card_file_lacking_a_variant_is_named_where_the_site_keeps_it(cards: Path, tmp_path: Path) -> None:
    """Named "cards/…", the error sent an informaticist to edit the shipped file."""
    path = cards / "cyclobenzaprine-duration.toml"
    _edit(path, "[variants.duration-unknown]", "[variants.renamed]")
    with pytest.raises(CardContentError, match=re.escape(f"{path}: missing variants ['duration-unknown']")):
        create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off"))


def test_a_summary_its_facts_take_past_the_limit_is_cut_at_a_word_and_logged(
    cards: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Start-up counts a fact as a date ("2026-11-21"); "ordered in 2026, day not recorded" is
    longer. The summary was cut mid-word ("since the last do") without a word to the site."""
    _set(
        cards / "cyclobenzaprine-maoi.toml",
        "stop-date-unknown",
        "summary",
        '"MAO inhibitor {ingredient} on record ({ordered}), stop date unknown: confirm with the patient '
        '≥ {washout_days} days since the last dose"',
    )
    app = create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off"), clock=Clock(NOON))
    with TestClient(app) as client:
        body = fixture("cyclobenzaprine-maoi/fires-maoi-ordered-in-a-year-alone-may-be-recent-warning.json")
        [card] = [
            c
            for c in client.post(SELECT, json=body).json()["cards"]
            if c["source"]["topic"]["code"] == "cyclobenzaprine-maoi"
        ]
    summary = card["summary"]
    assert len(summary) < 140
    assert summary == (
        "MAO inhibitor selegiline on record (ordered in 2026, day not recorded), stop date unknown: "
        "confirm with the patient ≥ 14 days since the…"
    )
    [line] = [r.getMessage() for r in caplog.records if "card summary over" in r.getMessage()]
    assert line == "card summary over 139 characters, cut: reword cyclobenzaprine-maoi, variant stop-date-unknown"


def test_card_text_may_name_any_fact_its_card_has(cards: Path, tmp_path: Path) -> None:
    """Not only the facts the shipped text names: the limit, in a planned-too-long summary."""
    _set(
        cards / "cyclobenzaprine-duration.toml",
        "planned-too-long",
        "summary",
        '"Over {limit_days} days: {planned_days}"',
    )
    app = create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off"), clock=Clock(NOON))
    with TestClient(app) as client:
        body = fixture("cyclobenzaprine-duration/fires-brand-flexeril-28-days.json")
        shown = client.post(SELECT, json=body).json()["cards"]
    assert [c["summary"] for c in shown if c["source"]["topic"]["code"] == "cyclobenzaprine-duration"] == [
        "Over 21 days: 28"
    ]


def test_a_sites_folder_holds_only_the_files_it_rewords(tmp_path: Path) -> None:
    """The rest, terminology included, are the shipped ones: a full copy froze every other
    card's fixes and every code list at the day it was made (an informaticist's review)."""
    site = tmp_path / "site-cards"
    site.mkdir()
    text = (PROJECT_ROOT / "cards" / "cyclobenzaprine-duration.toml").read_text()
    (site / "cyclobenzaprine-duration.toml").write_text(text.replace("Limit cyclobenzaprine to", "Site: limit to"))
    app = create_app(Settings(cards_dir=site, data_dir=tmp_path / "var", auth_mode="off"), clock=Clock(NOON))
    with TestClient(app) as client:
        [reworded] = client.post(
            SELECT, json=fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
        ).json()["cards"]
        hepatic = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
        [shipped] = client.post(SELECT, json=hepatic).json()["cards"]  # its text and its codes the shipped ones
    assert reworded["summary"] == "Site: limit to 2–3 weeks: 30 days planned"
    assert shipped["summary"] == "Cyclobenzaprine is not recommended in moderate or severe hepatic impairment"


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("cyclobenzaprine-duraton.toml", False),
        ("Cyclobenzaprine-Duration.toml", False),
        ("old", True),
        ("terminology", False),
    ],
)
def test_a_sites_file_of_no_shipped_name_stops_start_up(tmp_path: Path, name: str, folder: bool) -> None:
    """Misspelt, in capitals or in a folder of its own, a site's card text was never read and
    start-up said nothing (a code review): the shipped text stood."""
    site = tmp_path / "site-cards"
    (site / "old" if folder else site).mkdir(parents=True)
    text = (PROJECT_ROOT / "cards" / "cyclobenzaprine-duration.toml").read_text()
    if not folder:
        (site / name).write_text(text)
    (site / "README.md").write_text("notes of our own: not content, left alone")
    with pytest.raises(CardContentError, match=re.escape(f"{site / name}: no file or folder of the content has")):
        create_app(Settings(cards_dir=site, data_dir=tmp_path / "var", auth_mode="off"))


def test_an_evidence_key_a_sites_evidence_file_lacks_names_that_file(tmp_path: Path) -> None:
    """It named the shipped card file that cites the key, not the site's file to edit."""
    site = tmp_path / "site-cards"
    site.mkdir()
    text = (PROJECT_ROOT / "cards" / "evidence.toml").read_text()
    (site / "evidence.toml").write_text(text.replace("[BEERS]", "[BEERS-2023]"))
    with pytest.raises(CardContentError, match=re.escape(f"unknown keys ['BEERS'], not in {site / 'evidence.toml'}")):
        create_app(Settings(cards_dir=site, data_dir=tmp_path / "var", auth_mode="off"))


def test_a_cards_folder_that_is_not_there_stops_start_up(tmp_path: Path) -> None:
    """Read over the shipped content, a mistyped folder would have changed nothing, silently."""
    with pytest.raises(CardContentError, match=re.escape(f"{tmp_path / 'cardz'}: cannot list it: No such file")):
        create_app(Settings(cards_dir=tmp_path / "cardz", data_dir=tmp_path / "var", auth_mode="off"))


def test_shipped_content_loads(cards: Path, tmp_path: Path) -> None:
    assert create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off")).title


# --- terminology: how codes and names are read ------------------------------------------

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.fixture(scope="module")
def terminology() -> Terminology:
    return load_terminology(PROJECT_ROOT / "cards" / "terminology")


def _entry(code: str) -> str:
    return f'{{ system = "{ICD10}", code = "{code}", display = "test", source = "test" }}'


def test_prefixes_and_exclusions_in_shipped_files_and_local_codes(cards: Path) -> None:
    (cards / "terminology" / "concepts" / "zz-test.toml").write_text(
        "[condition.test-glaucoma]\n"
        'title = "test"\n'
        f"prefixes = [{_entry('H40.2')}]\n"
        f"exclude = [{_entry('H40.20X0')}]\n"
        f"exclude_prefixes = [{_entry('H40.22')}]\n"
    )
    local = cards / "local-codes.toml"
    local.write_text(f"[condition.test-glaucoma]\nprefixes = [{_entry('H40.03')}]\nexclude = [{_entry('H40.211')}]\n")
    concept = load_terminology(cards / "terminology", local).code_concepts["test-glaucoma"]
    assert (ICD10, "H402") in concept and (ICD10, "H40231") in concept  # the prefix and a code under it
    assert (ICD10, "H4020X0") not in concept  # an excluded code
    assert (ICD10, "H40221") not in concept and (ICD10, "H4022") not in concept  # an excluded prefix
    assert (ICD10, "H40031") in concept and (ICD10, "H40211") not in concept  # the site's own
    assert (ICD10, "H401") not in concept and (ICD10, "H40") not in concept  # not a parent


def test_a_combination_product_counts_for_each_relevant_ingredient(terminology: Terminology) -> None:
    # Aspirin / Carisoprodol / Codeine Phosphate (the sandbox's RxNorm list).
    drug = terminology.drug([Code(system=RXNORM, code="994227")])
    assert drug is not None and drug.ingredient == "carisoprodol"
    assert "codeine" in drug.ingredients
    assert terminology.is_medication("muscle-relaxant", drug)
    by_text = terminology.drug([], "hydrocodone bitartrate / acetaminophen 5/325 tablet")
    assert by_text is not None and by_text.ingredients == ("hydrocodone",)


@pytest.mark.parametrize(
    ("text", "extended", "sublingual", "strength"),
    [
        ("Tonmya 2.8 mg, 1 tablet under the tongue at bedtime", False, True, 2.8),
        ("cyclobenzaprine 2.8 mg sublingual tablet", False, True, None),
        ("cyclobenzaprine 2.8 mg SL at bedtime", False, True, None),
        ("Amrix 15 mg capsule", True, False, None),
        ("cyclobenzaprine extended-release 30 mg capsule", True, False, None),
        ("Cyclobenzaprine ER 15 mg", True, False, None),
        ("Flexeril 10 mg", False, False, None),
        ("FEXMID 7.5MG", False, False, None),
    ],
)
def test_cyclobenzaprine_by_brand_or_by_name(
    terminology: Terminology, text: str, extended: bool, sublingual: bool, strength: float | None
) -> None:
    drug = terminology.drug([], text)
    assert drug is not None and drug.ingredient == "cyclobenzaprine"
    assert (drug.extended_release, drug.sublingual, drug.strength_mg) == (extended, sublingual, strength)
    assert terminology.is_medication("cyclobenzaprine", drug)


def test_product_rows_carry_release_and_route(terminology: Terminology) -> None:
    amrix_pill = terminology.products["1174204"]  # "Amrix Pill": a brand dose form group
    assert amrix_pill.ingredient == "cyclobenzaprine" and amrix_pill.extended_release
    assert terminology.products["828348"].route == "oral" and not terminology.products["828348"].sublingual
    assert all(d.systemic for d in terminology.products.values() if d.ingredient == "ciprofloxacin")
    eye = terminology.drug([], "Ciprofloxacin 0.3% ophthalmic solution, 1 drop")
    ear = terminology.drug([], "ciprofloxacin otic suspension")
    assert eye is not None and ear is not None and not eye.systemic and not ear.systemic


def test_a_site_maps_its_code_to_a_product_with_no_rxnorm_code_by_its_brand(cards: Path) -> None:
    local = cards / "local-codes.toml"
    entry = '[[products]]\nsystem = "urn:oid:1.2.3"\ncode = "TON-28"\nbrand = "{}"\nsource = "formulary"\n'
    local.write_text(entry.format("Tonmya"))
    drug = load_terminology(cards / "terminology", local).drug([Code(system="urn:oid:1.2.3", code="TON-28")])
    assert drug is not None and drug.ingredient == "cyclobenzaprine" and drug.sublingual and drug.strength_mg == 2.8
    local.write_text(entry.format("Nonesuch"))
    with pytest.raises(TerminologyError, match="products\\[0\\]: brand 'Nonesuch' is not a known product"):
        load_terminology(cards / "terminology", local)


def test_every_card_has_the_facts_its_rule_declares(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Start-up checks card text against what each rule declares it fills (``Rule.variants``): over
    every fixture, each card's facts are exactly its variant's declared ones, and every variant fires."""
    seen: dict[tuple[str, str], set[frozenset[str]]] = {}
    unnamed: set[tuple[str, str, str]] = set()

    def spy(catalog: Any, finding: Finding, *args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.setdefault((finding.rule_id, finding.variant), set()).add(frozenset(finding.facts) - {NO_CHANGE})
        labels = catalog.texts[finding.rule_id].variants[finding.variant].suggestions
        unnamed.update((finding.rule_id, finding.variant, p.label) for p in finding.proposals if p.label not in labels)
        return render(catalog, finding, *args, **kwargs)

    monkeypatch.setattr(evaluate, "render", spy)
    with service(tmp_path / "var") as client:
        for request in hook_requests():
            answer(client, request)
    declared = {(rule.id, name): frozenset(facts) for rule in all_rules() for name, facts in rule.variants.items()}
    assert sorted(seen) == sorted(declared)
    assert {key: shapes for key, shapes in seen.items() if shapes != {declared[key]}} == {}
    assert unnamed == set(), "a suggestion its card has no words for is dropped"


@pytest.mark.parametrize(
    ("file", "concept"),
    [("interacting-drugs.toml", "medication.maoi-reversible"), ("back.toml", "condition.spinal-fusion")],
)
def test_a_site_terminology_lacking_a_concept_the_rules_read_stops_start_up(
    cards: Path, tmp_path: Path, file: str, concept: str
) -> None:
    """The rules ask a course whether it is of ``maoi-reversible`` by name, and a history whether
    it holds a ``spinal-fusion``: a site's own terminology without one would leave its check
    finding nothing, silently."""
    path = cards / "terminology" / "concepts" / file
    text = path.read_text()
    start = text.index(f"[{concept}]")
    path.write_text(text[:start] + text[text.index("\n[", start) + 1 :])
    name = concept.split(".")[1]
    with pytest.raises(TerminologyError, match=re.escape(f"no concept {name}; the rules read them")):
        create_app(Settings(cards_dir=cards, data_dir=tmp_path / "var", auth_mode="off"))


def test_the_shipped_content_is_named_where_it_is_edited() -> None:
    """Run from the source tree, start-up errors named ``cds_service/content/shipped/<file>``, the
    package's link, where a developer edits ``cards/<file>`` (an extensibility review)."""
    assert Path(str(content_dir())) == PROJECT_ROOT / "cards"
