"""An order whose words say "SL" where its code or stated strength rules a sublingual product out
("cyclobenzaprine 10 mg tablet SL": Tonmya is 2.8 mg only) is read as the oral tablet, and an
update sent back names it so: it kept "SL" in the drug's name, a sublingual order to the EHR that
shows it, beside the oral tablet the service read, checked and changed. The card says so."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, fixture

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NOTES = tomllib.loads((Path(__file__).resolve().parent.parent / "cards" / "update-notes.toml").read_text())
SUBLINGUAL_LEFT_OUT = " ".join(NOTES["sublingual-left-out"].split())
SL_10MG = "cyclobenzaprine 10 mg tablet SL"
# The sandbox's 30-day order, coded by the ingredient with the words "… SL": the duration card.
DURATION = "cyclobenzaprine-duration/fires-10mg-tablet-sl-no-sublingual-product-has.json"
# 70 years old, 10 mg three times a day for 30 days: the 5 mg swap and the duration card.
SWAP = "cyclobenzaprine-older-adult/fires-composed-swap-10mg-tid-30-days-age-70.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def draft_of(request: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = request["context"]["draftOrders"]["entry"][0]["resource"]
    return resource


def updates(body: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each update offered, with the card offering it."""
    return [
        (card, action["resource"])
        for card in body["cards"]
        for suggestion in card.get("suggestions", ())
        for action in suggestion["actions"]
        if action["type"] == "update"
    ]


def named(resource: dict[str, Any]) -> str:
    """Every word naming the drug in a resource sent back: its concept, its reference, what it contains."""
    return json.dumps([resource.get(key) for key in ("medicationCodeableConcept", "medicationReference", "contained")])


def by_ingredient_code(draft: dict[str, Any]) -> None:
    draft["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "21949"}], "text": SL_10MG}


def by_product_code(draft: dict[str, Any]) -> None:
    """The oral tablet's own code, the words against it: the code is read."""
    draft["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "828348", "display": SL_10MG}]}


def by_contained_medication(draft: dict[str, Any]) -> None:
    """Epic's shape: a contained Medication, the reference's display beside it."""
    draft.pop("medicationCodeableConcept", None)
    draft["contained"] = [
        {
            "resourceType": "Medication",
            "id": "med1",
            "code": {"coding": [{"system": RXNORM, "code": "21949"}], "text": SL_10MG},
        }
    ]
    draft["medicationReference"] = {"reference": "#med1", "display": "cyclobenzaprine 10 mg sublingual tablet"}


@pytest.mark.parametrize("name", [DURATION, SWAP])
@pytest.mark.parametrize("coded", [by_ingredient_code, by_product_code, by_contained_medication])
def test_an_update_names_the_drug_without_the_sl_it_was_not_read_by(
    client: TestClient, name: str, coded: Callable[[dict[str, Any]], None]
) -> None:
    request = fixture(name)
    coded(draft_of(request))
    offered = updates(answered(client, request))
    assert offered, "no update offered"
    for card, resource in offered:
        words = named(resource)
        assert " SL" not in words and "sublingual" not in words.lower(), words
        assert "cyclobenzaprine 10 mg tablet" in words or "828320" in words, words  # as read, or the swap's product
        # Said where the update keeps the drug; a swap names its new product (the pharmacist's review).
        assert (SUBLINGUAL_LEFT_OUT in card["detail"]) is ("828320" not in words), card["summary"]


def test_the_21_day_update_keeps_the_rest_of_the_words_as_the_prescriber_wrote_them(client: TestClient) -> None:
    request = fixture(DURATION)
    [(_, resource)] = updates(answered(client, request))
    assert resource["medicationCodeableConcept"] == {
        "coding": [{"system": RXNORM, "code": "21949", "display": "cyclobenzaprine"}],
        "text": "cyclobenzaprine 10 mg tablet",
    }


def test_a_contained_medication_is_renamed_in_place(client: TestClient) -> None:
    request = fixture(DURATION)
    by_contained_medication(draft_of(request))
    [(_, resource)] = updates(answered(client, request))
    assert resource["medicationReference"] == {"reference": "#med1", "display": "cyclobenzaprine 10 mg tablet"}
    assert [c["code"]["text"] for c in resource["contained"]] == ["cyclobenzaprine 10 mg tablet"]


def test_a_dstu2_order_is_renamed_as_well(client: TestClient) -> None:
    request = fixture("fhir-versions/dstu2-cyclobenzaprine-10mg-tid-30-days.json")
    draft_of(request)["medicationCodeableConcept"]["text"] = "Cyclobenzaprine 10 MG Oral Tablet (SL)"
    offered = updates(answered(client, request))
    assert offered
    for _, resource in offered:
        assert resource["resourceType"] == "MedicationOrder"
        assert "SL" not in named(resource), named(resource)


@pytest.mark.parametrize(
    "concept",
    [
        {"text": "cyclobenzaprine 5.6 mg SL"},
        {"text": "Tonmya (cyclobenzaprine HCl) 2.8 mg sublingual tablet"},
        {"coding": [{"system": RXNORM, "code": "21949"}], "text": "Tonmya 2.8 mg"},
    ],
)
def test_a_sublingual_order_keeps_its_sl(client: TestClient, concept: dict[str, Any]) -> None:
    """Read as Tonmya ("5.6 mg SL", two of its 2.8 mg tablets; Tonmya named beside the ingredient's
    code), the words are what was read: the once-a-day change keeps them, and the card says nothing
    of them."""
    request = fixture("cyclobenzaprine-older-adult/fires-sublingual-5.6mg-age-70.json")
    draft_of(request)["medicationCodeableConcept"] = json.loads(json.dumps(concept))
    offered = updates(answered(client, request))
    assert offered
    for card, resource in offered:
        assert resource["medicationCodeableConcept"] == concept
        assert SUBLINGUAL_LEFT_OUT not in card["detail"] and "Tonmya" not in card["detail"], card["detail"]


def tonmya_named(text: str) -> Callable[[dict[str, Any]], None]:
    """The oral 10 mg tablet's code, named ``text``: Tonmya, the sublingual 2.8 mg product, is ruled out."""

    def name(draft: dict[str, Any]) -> None:
        draft["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "828348"}], "text": text}

    return name


def tonmya_contained(draft: dict[str, Any]) -> None:
    """Epic's shape: a contained Medication of the oral tablet's code, the reference displayed as Tonmya."""
    draft.pop("medicationCodeableConcept", None)
    draft["contained"] = [
        {"resourceType": "Medication", "id": "med1", "code": {"coding": [{"system": RXNORM, "code": "828348"}]}}
    ]
    draft["medicationReference"] = {"reference": "#med1", "display": "Tonmya 2.8 mg sublingual tablet"}


ORAL_10MG = "cyclobenzaprine hydrochloride 10 mg oral tablet"
NAME_DROPPED = "accepting the change drops the name, which the EHR then gives from the code"


@pytest.mark.parametrize("name", [DURATION, SWAP])
@pytest.mark.parametrize(
    ("coded", "sent_back", "said"),
    [
        (tonmya_named("Tonmya 2.8 mg"), None, NAME_DROPPED),
        (tonmya_named("Tonmya 2.8 mg SL tablet"), None, NAME_DROPPED),
        (tonmya_named("cyclobenzaprine 10 mg tablet (Tonmya)"), "cyclobenzaprine 10 mg tablet", 'drops "Tonmya" from'),
        (tonmya_named("cyclobenzaprine 10 mg (Tonmya 2.8 mg)"), None, NAME_DROPPED),
        (tonmya_contained, None, NAME_DROPPED),
        # Its "NOT" goes with it: "... tablet - NOT" was sent back.
        (tonmya_named(f"{ORAL_10MG} - NOT Tonmya"), ORAL_10MG, 'drops "Tonmya" from'),
    ],
    ids=[
        "brand-and-strength",
        "brand-sl-tablet",
        "bracketed-brand",
        "bracketed-brand-and-strength",
        "contained",
        "not-the-brand",
    ],
)
def test_an_update_names_the_drug_without_a_sublingual_brand_its_code_rules_out(
    client: TestClient, name: str, coded: Callable[[dict[str, Any]], None], sent_back: str | None, said: str
) -> None:
    """ "Tonmya 2.8 mg" beside the oral 10 mg tablet's code was read as that tablet, and sent back
    unchanged beside the changed codes: a sublingual product's name on an oral order. The brand
    goes, and a name that then names no drug as read ("2.8 mg") goes whole: the EHR names the drug
    from its code. The card says which; a swap names its new product, and says nothing of it."""
    request = fixture(name)
    coded(draft_of(request))
    offered = updates(answered(client, request))
    kept = [(card, resource) for card, resource in offered if "828320" not in named(resource)]
    assert kept, "no update keeps the drug"
    for card, resource in offered:
        assert "tonmya" not in named(resource).lower() and "2.8" not in named(resource), named(resource)
        assert ('name says "Tonmya"' in card["detail"]) is ((card, resource) in kept), card["detail"]
    for card, resource in kept:
        assert said in card["detail"], card["detail"]
        concept = resource.get("medicationCodeableConcept") or resource["contained"][0]["code"]
        assert concept.get("text") == sent_back
        assert [c["code"] for c in concept["coding"]] == ["828348"]


@pytest.mark.parametrize(
    ("text", "sent_back"),
    [
        ("cyclobenzaprine 10 mg tablet (sublingual use)", "cyclobenzaprine 10 mg tablet"),
        ("cyclobenzaprine 10 mg tablet (for SL use) once daily", "cyclobenzaprine 10 mg tablet once daily"),
        ("cyclobenzaprine tablet (10 mg, SL)", "cyclobenzaprine tablet (10 mg)"),
    ],
)
def test_a_bracket_saying_sublingual_goes_whole_unless_it_states_a_number(
    client: TestClient, text: str, sent_back: str
) -> None:
    """ "(sublingual use)" left "( use)" in the name sent back; a bracket's number is the
    prescriber's, and stays."""
    request = fixture(DURATION)
    draft_of(request)["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "21949"}], "text": text}
    [(_, resource)] = updates(answered(client, request))
    assert resource["medicationCodeableConcept"]["text"] == sent_back
