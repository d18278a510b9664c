"""Code tables from ``cards/terminology/``, loaded and indexed once at start-up.

Rules ask clinical questions ("is this condition moderate-to-severe liver disease?", "which
ingredient is this product?"); this module answers them with a set or dict lookup. The codes
themselves live in data files that name their sources, so a clinician can audit them without
reading Python; a site adds its own codes in a local codes file (``CDS_LOCAL_CODES_FILE``).
"""

from __future__ import annotations

import csv
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from cds_service.fhir.coding import RXNORM, Code, code_key

_CODE_SECTIONS = ("condition", "procedure")


class TerminologyError(ValueError):
    """A terminology file is missing, malformed or refers to something that does not exist."""


@dataclass(frozen=True)
class Drug:
    """What a medication is, as far as the rules care."""

    ingredient: str
    name: str
    rxcui: str | None = None
    strength_mg: float | None = None
    extended_release: bool = False
    dose_form: str | None = None
    # The sublingual tablet (Tonmya): its own dose limits and indication (clinical specification §1).
    sublingual: bool = False


@dataclass
class CodeConcept:
    """A set of codes: listed codes, code ranges (HCPCS L0625–L0651), ICD-10-CM prefixes ("H40.2"
    covers every code under it), less excluded codes and prefixes, plus names matched in free text."""

    title: str
    codes: set[tuple[str, str]] = field(default_factory=set)
    ranges: list[tuple[str, str, str]] = field(default_factory=list)
    prefixes: set[tuple[str, str]] = field(default_factory=set)
    excluded: set[tuple[str, str]] = field(default_factory=set)
    excluded_prefixes: set[tuple[str, str]] = field(default_factory=set)
    names: list[str] = field(default_factory=list)

    def __contains__(self, key: tuple[str, str]) -> bool:
        if key in self.excluded or _under(key, self.excluded_prefixes):
            return False
        if key in self.codes or _under(key, self.prefixes):
            return True
        system, code = key
        return any(s == system and len(lo) == len(code) and lo <= code <= hi for s, lo, hi in self.ranges)

    def named_in(self, text: str) -> bool:
        lowered = text.lower()
        return any(name in lowered for name in self.names)


def _under(key: tuple[str, str], prefixes: set[tuple[str, str]]) -> bool:
    """Is the code one of ``prefixes`` or under one? Codes are short: try each leading part."""
    system, code = key
    return bool(prefixes) and any((system, code[:n]) in prefixes for n in range(1, len(code) + 1))


class Terminology:
    def __init__(
        self,
        *,
        products: dict[str, Drug],
        local_products: dict[tuple[str, str], Drug],
        ingredient_codes: dict[str, str],
        medication_concepts: dict[str, frozenset[str]],
        code_concepts: dict[str, CodeConcept],
        timing_codes: dict[str, float],
    ) -> None:
        self.products = products
        self.local_products = local_products
        self.ingredient_codes = ingredient_codes
        self.medication_concepts = medication_concepts
        self.code_concepts = code_concepts
        self.timing_codes = timing_codes
        self.relevant_ingredients = frozenset().union(*medication_concepts.values())
        self._relevant = CodeConcept(
            title="every code a rule reads",
            codes=set().union(*(c.codes for c in code_concepts.values())),
            ranges=[r for c in code_concepts.values() for r in c.ranges],
            prefixes=set().union(*(c.prefixes for c in code_concepts.values())),
        )
        self._names = tuple({name for c in code_concepts.values() for name in c.names})
        ingredients = {d.ingredient for d in products.values()} | set(ingredient_codes.values())
        ingredients |= self.relevant_ingredients
        self._ingredient_words = re.compile(
            r"\b(" + "|".join(sorted(map(re.escape, ingredients), key=len, reverse=True)) + r")\b", re.IGNORECASE
        )

    def drug(self, codings: Iterable[Code], text: str | None = None) -> Drug | None:
        """Identify a medication by RxNorm product or ingredient code, a site's local code, else
        by an ingredient's name in its text or displays."""
        return self._drug(tuple(codings), text)

    # Per process, bounded: a history names the same products over and over. Terminology lives
    # as long as the process, so the cache holding ``self`` costs nothing.
    @lru_cache(maxsize=16384)  # noqa: B019
    def _drug(self, codings: tuple[Code, ...], text: str | None) -> Drug | None:
        for coding in codings:
            key = code_key(coding.system, coding.code)
            if key in self.local_products:
                return self.local_products[key]
            if key[0] != RXNORM:
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

    def in_concept(self, concept: str, codes: Iterable[Code], text: str | None = None) -> bool:
        return self.matching(concept, codes) is not None or bool(text and self.code_concepts[concept].named_in(text))

    def matching(self, concept: str, codes: Iterable[Code]) -> Code | None:
        members = self.code_concepts[concept]
        return next((code for code in codes if code.key in members), None)

    def is_relevant(self, code: Code) -> bool:
        """Does any rule read this code? Lets context skip validating everything else."""
        return code.key in self._relevant

    def is_relevant_text(self, text: str) -> bool:
        """Is a concept that is recognised by name (physical therapy) named in ``text``?"""
        lowered = text.lower()
        return bool(text) and any(name in lowered for name in self._names)


def _valueset(path: Traversable) -> list[dict[str, Any]]:
    expansion = json.loads(path.read_text()).get("expansion", {})
    return list(expansion.get("contains", []))


def _products(path: Traversable) -> dict[str, Drug]:
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


def _codes(where: str, entries: list[dict[str, Any]], into: set[tuple[str, str]]) -> None:
    for entry in entries:
        if not entry.get("source"):
            raise TerminologyError(f"{where} code {entry.get('code')} has no source")
        try:
            into.add(code_key(entry["system"], entry["code"]))
        except KeyError as error:
            raise TerminologyError(f"{where} code entry lacks {error}") from None


def _fill(where: str, raw: dict[str, Any], concept: CodeConcept) -> None:
    """A concept's listed codes: ``codes``, ``prefixes`` (the code and every code under it), and
    ``exclude`` / ``exclude_prefixes`` (taken out again, e.g. a value set's premature beats)."""
    _codes(where, raw.get("codes", []), concept.codes)
    _codes(where, raw.get("prefixes", []), concept.prefixes)
    _codes(where, raw.get("exclude", []), concept.excluded)
    _codes(where, raw.get("exclude_prefixes", []), concept.excluded_prefixes)


def _read_toml(path: Traversable) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise TerminologyError(f"{path}: {error}") from error


def load_terminology(directory: Traversable, local_codes: Path | None = None) -> Terminology:
    """Read and cross-check the tables; any inconsistency stops start-up with the file named."""
    concepts_file = directory / "concepts.toml"
    concepts = _concept_files(directory)
    try:
        products = _products(directory / "rxnorm-products.tsv")
    except (OSError, KeyError, ValueError) as error:
        raise TerminologyError(f"{directory / 'rxnorm-products.tsv'}: {error}") from error

    def valueset(where: str, oid: str) -> list[dict[str, Any]]:
        path = directory / "valuesets" / f"{oid}.json"
        if not path.is_file():
            raise TerminologyError(f"{where} names value set {oid}, not in {directory / 'valuesets'}")
        return _valueset(path)

    medication_concepts = _medication_concepts(concepts, products, valueset, str(concepts_file))
    code_concepts = _code_concepts(concepts, valueset, str(concepts_file))
    local_products = _local_codes(local_codes, code_concepts, products) if local_codes is not None else {}
    return Terminology(
        products=products,
        local_products=local_products,
        ingredient_codes={code: name for name, code in concepts.get("ingredients", {}).items()},
        medication_concepts=medication_concepts,
        code_concepts=code_concepts,
        timing_codes={k.upper(): float(v) for k, v in concepts.get("timing-codes", {}).items()},
    )


def _concept_files(directory: Traversable) -> dict[str, Any]:
    """``concepts.toml`` and the clinical areas in ``concepts/*.toml``, merged: one file per area
    keeps each set auditable on its own, and a concept defined twice stops start-up."""
    files = [directory / "concepts.toml"]
    area_dir = directory / "concepts"
    if area_dir.is_dir():
        files += sorted((p for p in area_dir.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    merged: dict[str, Any] = {}
    for path in files:
        for section, entries in _read_toml(path).items():
            target = merged.setdefault(section, {})
            twice = set(target) & set(entries)
            if twice:
                raise TerminologyError(f"{path}: {section}.{sorted(twice)[0]} is already defined in another file")
            target.update(entries)
    return merged


ValueSets = Callable[[str, str], list[dict[str, Any]]]


def _medication_concepts(
    concepts: dict[str, Any], products: dict[str, Drug], valueset: ValueSets, concepts_file: str
) -> dict[str, frozenset[str]]:
    """Ingredients per medication concept; adds to ``products`` the products of these ingredients
    that only a VSAC expansion lists, by the ingredient in their name."""
    known = {d.ingredient for d in products.values()}
    medication_concepts: dict[str, frozenset[str]] = {}
    for name, concept in concepts.get("medication", {}).items():
        where = f"{concepts_file}: medication.{name}"
        name_only = set(concept.get("name_only", []))
        unknown = set(concept["ingredients"]) - known - name_only
        if unknown:
            raise TerminologyError(f"{where} names unknown ingredients {sorted(unknown)}")
        ingredients = frozenset(concept["ingredients"]) | name_only
        medication_concepts[name] = ingredients
        words = re.compile(r"\b(" + "|".join(map(re.escape, sorted(ingredients))) + r")\b", re.IGNORECASE)
        for oid in concept.get("product_valuesets", []):
            for entry in valueset(where, oid):
                match = words.search(entry.get("display", ""))
                if entry["code"] not in products and match:
                    products[entry["code"]] = Drug(
                        ingredient=match.group(1).lower(),
                        name=entry["display"],
                        rxcui=entry["code"],
                        extended_release="extended release" in entry["display"].lower(),
                    )
    return medication_concepts


def _code_concepts(concepts: dict[str, Any], valueset: ValueSets, concepts_file: str) -> dict[str, CodeConcept]:
    code_concepts: dict[str, CodeConcept] = {}
    for section in _CODE_SECTIONS:
        for name, raw in concepts.get(section, {}).items():
            where = f"{concepts_file}: {section}.{name}"
            concept = CodeConcept(title=raw["title"], names=[n.lower() for n in raw.get("names", [])])
            for oid in raw.get("valuesets", []):
                concept.codes |= {code_key(c["system"], c["code"]) for c in valueset(where, oid)}
            _fill(where, raw, concept)
            for entry in raw.get("ranges", []):
                if not entry.get("source"):
                    raise TerminologyError(f"{where} range {entry.get('from')} has no source")
                system, low = code_key(entry["system"], entry["from"])
                concept.ranges.append((system, low, code_key(entry["system"], entry["to"])[1]))
            code_concepts[name] = concept
    return code_concepts


def _local_codes(
    local_codes: Path, code_concepts: dict[str, CodeConcept], products: dict[str, Drug]
) -> dict[tuple[str, str], Drug]:
    """A site's own codes (CDS_LOCAL_CODES_FILE): added to the shipped concepts; local product
    codes mapped to the RxNorm products they stand for."""
    local = _read_toml(local_codes)
    for section in _CODE_SECTIONS:
        for name, raw in local.get(section, {}).items():
            if name not in code_concepts:
                raise TerminologyError(f"{local_codes}: {section}.{name} is not a concept in concepts.toml")
            _fill(f"{local_codes}: {section}.{name}", raw, code_concepts[name])
    local_products: dict[tuple[str, str], Drug] = {}
    for index, entry in enumerate(local.get("products", [])):
        where = f"{local_codes}: products[{index}]"
        if not entry.get("source"):
            raise TerminologyError(f"{where} has no source")
        if entry.get("rxnorm") not in products:
            raise TerminologyError(f"{where}: rxnorm {entry.get('rxnorm')!r} is not a known product")
        local_products[code_key(entry["system"], entry["code"])] = products[entry["rxnorm"]]
    unknown = set(local) - {*_CODE_SECTIONS, "products"}
    if unknown:
        raise TerminologyError(f"{local_codes}: unknown sections {sorted(unknown)}")
    return local_products
