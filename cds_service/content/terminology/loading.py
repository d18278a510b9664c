"""Reading and cross-checking the files of ``cards/terminology/`` (a site's local codes: ``local``):
any inconsistency stops start-up with the file and entry named."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from cds_service.content.terminology.local import CODE_SECTIONS, as_written, fill, read_local_codes, read_toml
from cds_service.content.terminology.lookup import Terminology
from cds_service.content.terminology.model import CodeConcept, Drug, SiteOmission, TerminologyError
from cds_service.content.terminology.names import Brand, NameReader, words
from cds_service.fhir.coding import code_key

ValueSets = Callable[[str, str], list[dict[str, Any]]]


def load_terminology(
    directory: Traversable, local_codes: Path | None = None, shipped: Traversable | None = None
) -> Terminology:
    """Read and cross-check the tables; any inconsistency stops start-up with the file named.
    ``shipped``: the shipped folder, when ``directory`` is a site's own that replaces it."""
    concepts_file = str(directory / "concepts.toml")
    tables = _concept_tables(directory)
    concepts = _merged(tables)
    try:
        products = _products(directory / "rxnorm-products.tsv")
    except (OSError, KeyError, ValueError) as error:
        raise TerminologyError(f"{directory / 'rxnorm-products.tsv'}: {error}") from error

    read: dict[str, list[dict[str, Any]]] = {}  # several concepts draw on the same value set

    def valueset(where: str, oid: str) -> list[dict[str, Any]]:
        if oid not in read:
            path = directory / "valuesets" / f"{oid}.json"
            if not path.is_file():
                raise TerminologyError(f"{where} names value set {oid}, not in {directory / 'valuesets'}")
            try:
                data = json.loads(path.read_bytes())
            except (OSError, ValueError) as error:  # not there, not UTF-8, not JSON
                raise TerminologyError(f"{path}: {error}") from error
            expansion = data.get("expansion", {}) if isinstance(data, dict) else None
            contains = expansion.get("contains", []) if isinstance(expansion, dict) else None
            if not isinstance(contains, list) or not all(isinstance(c, dict) for c in contains):
                raise TerminologyError(f"{path}: not a value set expansion (expansion.contains, a list of codes)")
            read[oid] = contains
        return read[oid]

    medication_concepts = _medication_concepts(concepts, products, concepts_file)
    ingredient_codes = {code: name for name, code in concepts.get("ingredients", {}).items()}
    relevant = frozenset().union(*medication_concepts.values())
    reader = NameReader(
        {i for d in products.values() for i in d.ingredients} | set(ingredient_codes.values()) | relevant,
        _brands(products, concepts.get("brands", {}), concepts_file),
        relevant,
    )
    _valueset_products(concepts, medication_concepts, products, valueset, reader, concepts_file)
    code_concepts = _code_concepts(concepts, valueset, concepts_file)
    site_omissions = _left_out(tables, code_concepts, shipped) if shipped is not None else ()
    local_products, local_exclusions = (
        read_local_codes(local_codes, code_concepts, products, reader) if local_codes is not None else ({}, ())
    )
    return Terminology(
        products=products,
        local_products=local_products,
        local_exclusions=local_exclusions,
        site_omissions=site_omissions,
        ingredient_codes=ingredient_codes,
        medication_concepts=medication_concepts,
        code_concepts=code_concepts,
        timing_codes={k.upper(): float(v) for k, v in concepts.get("timing-codes", {}).items()},
        names=reader,
    )


def require_concepts(terminology: Terminology, directory: Traversable, shipped: Traversable) -> None:
    """A site's own terminology defines every concept the shipped one does: the rules and the
    facts read them by name, and a concept missing would make their checks find nothing, silently."""
    names = _merged(_concept_tables(shipped))
    missing = sorted(set(names.get("medication", {})) - terminology.medication_concepts.keys())
    missing += sorted({n for s in CODE_SECTIONS for n in names.get(s, {})} - terminology.code_concepts.keys())
    if missing:
        raise TerminologyError(
            f"{directory}: no concept {', '.join(missing)}; the rules read them (copy them from the shipped ones)"
        )


def _products(path: Traversable) -> dict[str, Drug]:
    """rxnorm-products.tsv: one row per RxNorm concept, read as the importer wrote it."""
    lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if not line.startswith("#")]
    products = {}
    for row in csv.DictReader(lines, delimiter="\t"):
        release = row["release"]
        products[row["rxcui"]] = Drug(
            ingredient=row["ingredient"],
            ingredients=tuple(filter(None, (row.get("ingredients") or "").split(","))),
            name=row["name"],
            rxcui=row["rxcui"],
            strength_mg=float(row["strength_mg"]) if row["strength_mg"] else None,
            extended_release=release == "extended",
            sublingual=release == "sublingual",
            dose_form=row["dose_form"] or None,
            route=row.get("route") or None,
        )
    return products


def _brands(products: dict[str, Drug], listed: dict[str, Any], concepts_file: str) -> dict[str, Brand]:
    """The brand names the table knows: each bracketed brand of its product names ("... [Amrix]")
    whose products agree on their ingredients (and on their release form, if they all share one),
    plus the brands ``concepts.toml`` lists with their source (no product in our sources yet)."""
    found: dict[str, list[Drug]] = {}
    for drug in products.values():
        brand = re.search(r"\[([^\]]+)\]$", drug.name)
        if brand:
            found.setdefault(brand.group(1), []).append(drug)
    brands = {}
    for name, drugs in found.items():
        if len({d.ingredients for d in drugs}) == 1:
            # Only products that name a dose form state a release form (components do not).
            stated = [d for d in drugs if d.route is not None]
            releases = {"extended" if d.extended_release else "sublingual" if d.sublingual else None for d in stated}
            brands[name] = Brand(drugs[0].ingredients, releases.pop() if len(releases) == 1 else None)
    for name, entry in listed.items():
        if not entry.get("source"):
            raise TerminologyError(f"{concepts_file}: brands.{name} has no source")
        brands[name] = Brand(tuple(entry["ingredients"]), entry.get("release"), entry.get("strength_mg"))
    return brands


def _left_out(
    tables: list[tuple[Traversable, dict[str, Any]]], code_concepts: dict[str, CodeConcept], shipped: Traversable
) -> tuple[SiteOmission, ...]:
    """What a site's own folder no longer recognises of each shipped concept's listed codes and
    prefixes (its value sets' codes among them; ranges not compared), named by the site's file
    that defines the concept. A concept the folder lacks is ``require_concepts``'s to refuse."""
    shipped_concepts = load_terminology(shipped).code_concepts
    found = []
    for path, table in tables:
        for section in CODE_SECTIONS:
            for name in table.get(section, {}):
                if name in shipped_concepts:
                    left_out = code_concepts[name].left_out(shipped_concepts[name])
                    if left_out:
                        where = f"{path}: {section}.{name}"
                        listed = len(shipped_concepts[name].listed())
                        found.append(SiteOmission(where, tuple(as_written(k) for k in left_out), listed))
    return tuple(found)


def _merged(tables: list[tuple[Traversable, dict[str, Any]]]) -> dict[str, Any]:
    """The concept files' tables as one: a concept defined twice stops start-up."""
    merged: dict[str, Any] = {}
    for path, table in tables:
        for section, entries in table.items():
            target = merged.setdefault(section, {})
            twice = set(target) & set(entries)
            if twice:
                raise TerminologyError(f"{path}: {section}.{sorted(twice)[0]} is already defined in another file")
            target.update(entries)
    return merged


def _concept_tables(directory: Traversable) -> list[tuple[Traversable, dict[str, Any]]]:
    """``concepts.toml`` and the clinical areas in ``concepts/*.toml``, each with its file: one
    file per area keeps each set auditable on its own."""
    files = [directory / "concepts.toml"]
    area_dir = directory / "concepts"
    try:
        if area_dir.is_dir():
            files += sorted((p for p in area_dir.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    except OSError as error:  # not to be entered, or not listed
        raise TerminologyError(f"{area_dir}: cannot list it: {error.strerror or error}") from None
    return [(path, read_toml(path)) for path in files]


def _medication_concepts(
    concepts: dict[str, Any], products: dict[str, Drug], concepts_file: str
) -> dict[str, frozenset[str]]:
    """Ingredients per medication concept: each one a product has, or one listed as ``name_only``."""
    known = {i for d in products.values() for i in d.ingredients}
    medication_concepts: dict[str, frozenset[str]] = {}
    for name, concept in concepts.get("medication", {}).items():
        name_only = set(concept.get("name_only", []))
        unknown = set(concept["ingredients"]) - known - name_only
        if unknown:
            raise TerminologyError(f"{concepts_file}: medication.{name} names unknown ingredients {sorted(unknown)}")
        medication_concepts[name] = frozenset(concept["ingredients"]) | name_only
    return medication_concepts


def _valueset_products(
    concepts: dict[str, Any],
    medication_concepts: dict[str, frozenset[str]],
    products: dict[str, Drug],
    valueset: ValueSets,
    reader: NameReader,
    concepts_file: str,
) -> None:
    """Adds to ``products`` the products that only a concept's VSAC expansions list, when their
    name names an ingredient of that concept."""
    for name, concept in concepts.get("medication", {}).items():
        named = words(medication_concepts[name])
        for oid in concept.get("product_valuesets", []):
            for entry in valueset(f"{concepts_file}: medication.{name}", oid):
                display = entry.get("display", "")
                if entry["code"] in products or not named.search(display):
                    continue
                drug = reader.drug(display, rxcui=entry["code"])
                if drug is not None:
                    products[entry["code"]] = drug


def _code_concepts(concepts: dict[str, Any], valueset: ValueSets, concepts_file: str) -> dict[str, CodeConcept]:
    code_concepts: dict[str, CodeConcept] = {}
    for section in CODE_SECTIONS:
        for name, raw in concepts.get(section, {}).items():
            where = f"{concepts_file}: {section}.{name}"
            concept = CodeConcept(title=raw["title"], names=[n.lower() for n in raw.get("names", [])])
            for oid in raw.get("valuesets", []):
                concept.codes |= {code_key(c["system"], c["code"]) for c in valueset(where, oid)}
            fill(where, raw, concept)
            for entry in raw.get("ranges", []):
                if not entry.get("source"):
                    raise TerminologyError(f"{where} range {entry.get('from')} has no source")
                system, low = code_key(entry["system"], entry["from"])
                concept.ranges.append((system, low, code_key(entry["system"], entry["to"])[1]))
            code_concepts[name] = concept
    return code_concepts
