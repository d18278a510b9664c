"""Code tables from ``cards/terminology/``, loaded and indexed once at start-up.

Rules ask clinical questions ("is this condition moderate-to-severe liver disease?", "which
ingredient is this product?"); this module answers them with a set or dict lookup. The codes
themselves live in data files that name their sources, so a clinician can audit them
without reading Python.
"""

from __future__ import annotations

import csv
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"


class TerminologyError(ValueError):
    """A terminology file is missing, malformed or refers to something that does not exist."""


@dataclass(frozen=True)
class Code:
    system: str
    code: str
    display: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return code_key(self.system, self.code)


def code_key(system: str, code: str) -> tuple[str, str]:
    """The form codes are compared in: ICD-10-CM matches with or without its dot."""
    system = system.strip().rstrip("/")
    code = code.strip()
    if system == ICD10CM:
        code = code.replace(".", "").upper()
    return system, code


@dataclass(frozen=True)
class Drug:
    """What a medication is, as far as the rules care."""

    ingredient: str
    name: str
    rxcui: str | None = None
    strength_mg: float | None = None
    extended_release: bool = False
    dose_form: str | None = None


class Terminology:
    def __init__(
        self,
        *,
        products: dict[str, Drug],
        ingredient_codes: dict[str, str],
        medication_concepts: dict[str, frozenset[str]],
        code_concepts: dict[str, frozenset[tuple[str, str]]],
        timing_codes: dict[str, float],
    ) -> None:
        self.products = products
        self.ingredient_codes = ingredient_codes
        self.medication_concepts = medication_concepts
        self.code_concepts = code_concepts
        self.timing_codes = timing_codes
        ingredients = {d.ingredient for d in products.values()} | set(ingredient_codes.values())
        self._ingredient_words = re.compile(
            r"\b(" + "|".join(sorted(map(re.escape, ingredients))) + r")\b", re.IGNORECASE
        )

    def drug(self, codings: Iterable[Code], text: str | None = None) -> Drug | None:
        """Identify a medication by RxNorm product or ingredient code, else by name in its text."""
        codings = list(codings)
        for coding in codings:
            if code_key(coding.system, "")[0] != RXNORM:
                continue
            if coding.code in self.products:
                return self.products[coding.code]
            if coding.code in self.ingredient_codes:
                name = self.ingredient_codes[coding.code]
                return Drug(ingredient=name, name=coding.display or text or name, rxcui=coding.code)
        for label in (text, *(c.display for c in codings)):
            match = self._ingredient_words.search(label or "")
            if match:
                return Drug(
                    ingredient=match.group(1).lower(),
                    name=label or match.group(1),
                    extended_release="extended release" in (label or "").lower(),
                )
        return None

    def is_medication(self, concept: str, drug: Drug | None) -> bool:
        return drug is not None and drug.ingredient in self.medication_concepts[concept]

    def in_concept(self, concept: str, codes: Iterable[Code]) -> bool:
        members = self.code_concepts[concept]
        return any(code.key in members for code in codes)

    def matching(self, concept: str, codes: Iterable[Code]) -> Code | None:
        members = self.code_concepts[concept]
        return next((code for code in codes if code.key in members), None)

    @property
    def relevant_ingredients(self) -> frozenset[str]:
        return frozenset().union(*self.medication_concepts.values())

    @property
    def relevant_codes(self) -> frozenset[tuple[str, str]]:
        return frozenset().union(*self.code_concepts.values())


def _valueset_codes(path: Path) -> set[tuple[str, str]]:
    expansion = json.loads(path.read_text()).get("expansion", {})
    return {code_key(c["system"], c["code"]) for c in expansion.get("contains", [])}


def _products(path: Path) -> dict[str, Drug]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    products = {}
    for row in csv.DictReader(lines, delimiter="\t"):
        products[row["rxcui"]] = Drug(
            ingredient=row["ingredient"],
            name=row["name"],
            rxcui=row["rxcui"],
            strength_mg=float(row["strength_mg"]) if row["strength_mg"] else None,
            extended_release=row["release"] == "extended",
            dose_form=row["dose_form"] or None,
        )
    return products


def load_terminology(directory: Path) -> Terminology:
    """Read and cross-check the tables; any inconsistency stops start-up with the file named."""
    concepts_file = directory / "concepts.toml"
    try:
        concepts = tomllib.loads(concepts_file.read_text())
        products = _products(directory / "rxnorm-products.tsv")
    except (OSError, tomllib.TOMLDecodeError, KeyError, ValueError) as error:
        raise TerminologyError(f"{directory}: {error}") from error

    known_ingredients = {d.ingredient for d in products.values()}
    medication_concepts = {}
    for name, concept in concepts.get("medication", {}).items():
        unknown = set(concept["ingredients"]) - known_ingredients
        if unknown:
            raise TerminologyError(f"{concepts_file}: medication.{name} names unknown ingredients {sorted(unknown)}")
        medication_concepts[name] = frozenset(concept["ingredients"])

    code_concepts: dict[str, frozenset[tuple[str, str]]] = {}
    for section in ("condition", "procedure"):
        for name, concept in concepts.get(section, {}).items():
            members: set[tuple[str, str]] = set()
            for oid in concept.get("valuesets", []):
                path = directory / "valuesets" / f"{oid}.json"
                if not path.exists():
                    raise TerminologyError(
                        f"{concepts_file}: {section}.{name} names value set {oid}, not in {path.parent}"
                    )
                members |= _valueset_codes(path)
            for code in concept.get("codes", []):
                if not code.get("source"):
                    raise TerminologyError(f"{concepts_file}: {section}.{name} code {code.get('code')} has no source")
                members.add(code_key(code["system"], code["code"]))
            code_concepts[name] = frozenset(members)

    return Terminology(
        products=products,
        ingredient_codes={code: name for name, code in concepts.get("ingredients", {}).items()},
        medication_concepts=medication_concepts,
        code_concepts=code_concepts,
        timing_codes={k.upper(): float(v) for k, v in concepts.get("timing-codes", {}).items()},
    )
