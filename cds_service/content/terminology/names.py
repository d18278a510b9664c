"""Reading a medication off its name: the ingredients and brands it names, its release form and
route. The importer (tools/import_terminology.py) reads RxNorm product names with these same
words, so a product found by its code and one found by its text are read alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cds_service.content.terminology.model import Drug
from cds_service.fhir.coding import one_line

# First match wins: a "Sublingual Tablet" is sublingual, an "Ophthalmic Solution" ophthalmic.
ROUTES = (
    ("ophthalmic", r"ophthalmic|eye drops?"),
    ("otic", r"otic|ear drops?"),
    ("sublingual", r"sublingual"),
    ("buccal", r"buccal"),
    ("transdermal", r"transdermal"),
    ("nasal", r"nasal"),
    ("rectal", r"rectal"),
    ("vaginal", r"vaginal"),
    ("inhalation", r"inhal\w*"),
    ("injectable", r"injectable|injection|prefilled syringe|cartridge|auto-injector"),
    ("topical", r"topical|cream|ointment|lotion"),
    ("oral", r"oral|tablet|capsule|pill|elixir|syrup"),
)
_ROUTES = tuple((route, re.compile(rf"\b(?:{words})\b", re.IGNORECASE)) for route, words in ROUTES)


def route_named(name: str) -> str | None:
    """The route a name states; None when it states none (an RxNorm component, most free text)."""
    return next((route for route, words in _ROUTES if words.search(name)), None)


# RxNorm spells the release form out; order text often abbreviates it (upper case only, so that
# ordinary words are not read as one).
_SUBLINGUAL = re.compile(r"(?i:\bsublingual\b)|\bSL\b")
# RxNorm's "24 HR" before a name: an extended-release product ("24 hr capsule").
_EXTENDED = re.compile(r"(?i:\bextended[- ]release\b|\b(?:12|24)[- ]?(?:hr|hour)\b)|\b(?:ER|XR|XL|SR|CR)\b")


def release_named(name: str) -> str | None:
    """ "sublingual", "extended" or None (not stated) as the name says."""
    if _SUBLINGUAL.search(name):
        return "sublingual"
    return "extended" if _EXTENDED.search(name) else None


def says_sublingual(name: str) -> bool:
    return bool(_SUBLINGUAL.search(name))


# The same words, with the brackets or the comma they may stand in: "10 mg tablet (SL)".
_SUBLINGUAL_SAID = re.compile(r"\(\s*(?:(?i:sublingual)|SL)\s*\)|[,;]?\s*(?:(?i:\bsublingual\b)|\bSL\b)")


def without_sublingual(name: str) -> str:
    """``name`` without the words that say sublingual, the rest as written: for a drug read as
    another form, "cyclobenzaprine 10 mg tablet SL" (no sublingual product comes in 10 mg) names
    what was read, "cyclobenzaprine 10 mg tablet". "" where those words were all it said."""
    return re.sub(r" (?=[,;])", "", " ".join(_SUBLINGUAL_SAID.sub(" ", name).split())).strip(" ,;-/")


@dataclass(frozen=True)
class Brand:
    """A brand name and what it stands for: Amrix is extended-release cyclobenzaprine."""

    ingredients: tuple[str, ...]
    release: str | None = None
    # A brand made in one strength only (Tonmya 2.8 mg) gives it; else the order's text must.
    strength_mg: float | None = None


def words(names: Iterable[str]) -> re.Pattern[str]:
    """Any of ``names`` as whole words, case-insensitive, the longest first."""
    ordered = sorted(map(re.escape, set(names)), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(ordered) + r")\b", re.IGNORECASE) if ordered else re.compile(r"(?!)")


class NameReader:
    """Identifies a medication by the ingredients and brands its text names (clinical
    specification §1: when no code is known, word match, case-insensitive)."""

    def __init__(self, ingredients: Iterable[str], brands: dict[str, Brand], relevant: frozenset[str]) -> None:
        self._ingredients = words(ingredients)
        self._brands = {name.lower(): brand for name, brand in brands.items()}
        self._brand_words = words(brands)
        self._relevant = relevant
        # The strengths a sublingual product of an ingredient comes in (Tonmya: 2.8 mg).
        self._sublingual_mg: dict[str, set[float]] = {}
        for brand in brands.values():
            if brand.release == "sublingual" and brand.strength_mg is not None:
                self._sublingual_mg.setdefault(brand.ingredients[0], set()).add(brand.strength_mg)

    def drug(self, label: str, rxcui: str | None = None, coded_mg: float | None = None) -> Drug | None:
        """The drug ``label`` names; ``coded_mg`` a strength its code gives (a component's), which
        its "SL" must fit as the words' own strengths must."""
        found: list[tuple[int, tuple[str, ...]]] = [
            (m.start(), (m.group(1).lower(),)) for m in self._ingredients.finditer(label)
        ]
        brands = [(m.start(), self._brands[m.group(1).lower()]) for m in self._brand_words.finditer(label)]
        found += [(at, brand.ingredients) for at, brand in brands]
        if not found:
            return None
        # In the order the text names them, each once.
        named = list(dict.fromkeys(i for _, ingredients in sorted(found) for i in ingredients))
        # The ingredient the card names and the strength belongs to: a relevant one first.
        primary = next((i for i in named if i in self._relevant), named[0])
        releases = {release_named(label), *(brand.release for _, brand in brands)} - {None}
        if "sublingual" in releases and not any(brand.release == "sublingual" for _, brand in brands):
            releases -= self._no_such_sublingual(primary, label, coded_mg)
        strengths = {brand.strength_mg for _, brand in brands if brand.ingredients[0] == primary}
        return Drug(
            ingredient=primary,
            ingredients=tuple(named),
            name=one_line(label),
            rxcui=rxcui,
            strength_mg=strengths.pop() if len(strengths) == 1 else None,
            extended_release="extended" in releases,
            sublingual="sublingual" in releases,
            route="sublingual" if "sublingual" in releases else route_named(label),
        )

    def _no_such_sublingual(self, ingredient: str, label: str, coded_mg: float | None) -> set[str]:
        """{"sublingual"} when the words' "SL" cannot be so: they state a strength no sublingual
        product of the ingredient has ("cyclobenzaprine 10 mg tablet SL": Tonmya is 2.8 mg only),
        read as the oral tablet, the duration card and the 5 mg swap with it, not as Tonmya."""
        known = self._sublingual_mg.get(ingredient)
        stated = [v for mg in _MG.findall(label) if math.isfinite(v := float(mg.replace(",", ".")))]  # 10^400: inf
        stated += [coded_mg] if coded_mg else []
        # A dose of the product's tablets ("5.6 mg SL", two of 2.8 mg) is its strength too.
        of_it = any(round(mg / k) >= 1 and abs(mg / k - round(mg / k)) < 1e-6 for mg in stated for k in known or ())
        return {"sublingual"} if known and stated and not of_it else set()


# From the start of a number only: tried from each digit, 16,000 digits took 8 s.
_MG = re.compile(r"(?<![\d.,])(\d+(?:[.,]\d+)?)\s*mg\b", re.IGNORECASE)
