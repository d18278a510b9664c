"""A site's own codes (CDS_LOCAL_CODES_FILE), checked entry by entry, and what they share with
the shipped concept files: reading a TOML file and a concept's lists of codes."""

from __future__ import annotations

import tomllib
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from cds_service.content.terminology.model import CodeConcept, Drug, LocalExclusion, TerminologyError, under
from cds_service.content.terminology.names import NameReader
from cds_service.fhir.coding import ICD10CM, RXNORM, code_key

CODE_SECTIONS = ("condition", "procedure")
_LOCAL_SECTIONS = [*CODE_SECTIONS, "products"]
_LOCAL_CONCEPT_KEYS = frozenset({"codes", "prefixes", "exclude", "exclude_prefixes"})
_PRODUCT_KEYS = frozenset({"system", "code", "display", "rxnorm", "brand", "source"})
# An excluded prefix this short is an ICD-10-CM chapter ("I", circulatory) or a block of one
# ("I2"): a clinical safety review found "I" taking every heart failure code out, silently.
_SHORTEST_EXCLUDED_PREFIX = 3

LocalCodes = tuple[dict[tuple[str, str], Drug], tuple[LocalExclusion, ...]]


def read_toml(path: Traversable) -> dict[str, Any]:
    """UTF-8 whatever the machine's encoding; a byte-order mark (some Windows editors') dropped."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise TerminologyError(f"{path}: {error}") from error


def _codes(where: str, entries: list[dict[str, Any]], into: set[tuple[str, str]]) -> None:
    for entry in entries:
        if not entry.get("source"):
            raise TerminologyError(f"{where} code {entry.get('code')} has no source")
        try:
            into.add(code_key(entry["system"], entry["code"]))
        except KeyError as error:
            raise TerminologyError(f"{where} code entry lacks {error}") from None


def fill(where: str, raw: dict[str, Any], concept: CodeConcept) -> None:
    """A concept's listed codes: ``codes``, ``prefixes`` (the code and every code under it), and
    ``exclude`` / ``exclude_prefixes`` (taken out again, e.g. a value set's premature beats)."""
    _codes(where, raw.get("codes", []), concept.codes)
    _codes(where, raw.get("prefixes", []), concept.prefixes)
    _codes(where, raw.get("exclude", []), concept.excluded)
    _codes(where, raw.get("exclude_prefixes", []), concept.excluded_prefixes)


def read_local_codes(
    local_codes: Path, code_concepts: dict[str, CodeConcept], products: dict[str, Drug], reader: NameReader
) -> LocalCodes:
    """A site's own codes: added to (or taken out of) the shipped concepts; local product codes
    mapped to the RxNorm products (or the brands) they stand for. Checked entry by entry: a
    misspelt key matched nothing, and a code mapped twice or onto RxNorm changed cards silently."""
    local = read_toml(local_codes)
    unknown = set(local) - {*CODE_SECTIONS, "products"}
    if unknown:
        raise TerminologyError(f"{local_codes}: unknown sections {sorted(unknown)} (expected {_LOCAL_SECTIONS})")
    exclusions: list[LocalExclusion] = []
    for section in CODE_SECTIONS:
        for name, raw in local.get(section, {}).items():
            where = f"{local_codes}: {section}.{name}"
            if name not in code_concepts:
                raise TerminologyError(f"{where} is not a concept of concepts.toml or concepts/*.toml")
            _known_keys(where, raw, _LOCAL_CONCEPT_KEYS)
            for field in _LOCAL_CONCEPT_KEYS:
                for entry in raw.get(field, []):
                    _strings(f"{where}.{field}", entry, ("system", "code"))
            shipped = code_concepts[name].listed()
            fill(where, raw, code_concepts[name])
            exclusions += _exclusions(where, raw, code_concepts[name], shipped)
    return _local_products(local_codes, local.get("products", []), products, reader), tuple(exclusions)


def _exclusions(
    where: str, raw: dict[str, Any], concept: CodeConcept, shipped: set[tuple[str, str]]
) -> list[LocalExclusion]:
    """What each of the site's exclusions takes out of the shipped lists, said at every start.
    One that takes out an ICD-10-CM chapter or block, or every code and prefix the shipped lists
    name, stops start-up: the rules' critical cards fell silent with no word (a clinical safety review)."""
    found = []
    for field in ("exclude", "exclude_prefixes"):
        for entry in raw.get(field, []):
            key = code_key(entry["system"], entry["code"])
            is_prefix = field == "exclude_prefixes"
            if is_prefix and len(key[1]) < _SHORTEST_EXCLUDED_PREFIX:
                raise TerminologyError(
                    f"{where}: exclude_prefixes code {entry['code']!r} takes out a whole chapter or block of "
                    f"{key[0]}; exclude the codes, or the longer prefixes, meant"
                )
            removed = {k for k in shipped if k == key or (is_prefix and under(k, {key}))}
            within = sorted(as_written(k) for k in shipped & concept.prefixes if k not in removed and under(key, {k}))
            found.append(LocalExclusion(where, field, key[0], entry["code"], len(removed), len(shipped), tuple(within)))
    if found and shipped and not concept.ranges and not shipped & concept.listed():
        codes = ", ".join(f"{e.field} {e.code}" for e in found)
        raise TerminologyError(
            f"{where}: its exclusions ({codes}) take out every code and prefix the shipped lists name; "
            "the rules reading it would find nothing (to switch a rule off, see docs/configuration.md)"
        )
    return found


def as_written(key: tuple[str, str]) -> str:
    """An ICD-10-CM code with its dot again, as the shipped files write it."""
    system, code = key
    return f"{code[:3]}.{code[3:]}" if system == ICD10CM and len(code) > 3 else code


def _local_products(
    local_codes: Path, entries: list[Any], products: dict[str, Drug], reader: NameReader
) -> dict[tuple[str, str], Drug]:
    local_products: dict[tuple[str, str], Drug] = {}
    for index, entry in enumerate(entries):
        where = f"{local_codes}: products[{index}]"
        _known_keys(where, entry, _PRODUCT_KEYS)
        if isinstance(entry, dict) and "brand" in entry and "rxnorm" in entry:  # the brand won, silently
            raise TerminologyError(
                f"{where}: give rxnorm or brand, not both (brand only for a product with no RxNorm code)"
            )
        _strings(where, entry, ("system", "code", "source", "rxnorm" if "brand" not in entry else "brand"))
        system, code = key = code_key(entry["system"], entry["code"])
        if system == RXNORM:
            raise TerminologyError(f"{where}: an RxNorm code is read as itself; a local product is a site's own code")
        if key in local_products:
            raise TerminologyError(f"{where}: {system}|{code} is mapped twice")
        # A product with no RxNorm code in our sources (Tonmya) is named by its brand instead.
        drug = reader.drug(entry["brand"]) if "brand" in entry else products.get(entry["rxnorm"])
        if drug is None:
            what = f"brand {entry['brand']!r}" if "brand" in entry else f"rxnorm {entry['rxnorm']!r}"
            raise TerminologyError(f"{where}: {what} is not a known product")
        local_products[key] = drug
    return local_products


def _known_keys(where: str, entry: object, keys: frozenset[str]) -> None:
    if not isinstance(entry, dict):
        raise TerminologyError(f"{where} is not a table")
    unknown = sorted(set(entry) - keys)
    if unknown:
        raise TerminologyError(f"{where}: unknown keys {unknown} (expected some of {sorted(keys)})")


def _strings(where: str, entry: object, keys: tuple[str, ...]) -> None:
    if not isinstance(entry, dict):
        raise TerminologyError(f"{where}: an entry is not a table")
    for key in keys:
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise TerminologyError(f"{where}: {key} must be a non-empty string (in quotes)")
