"""Reading a medication off its name: the ingredients and brands it names, its release form and
route. The importer (tools/import_terminology.py) reads RxNorm product names with these same
words, so a product found by its code and one found by its text are read alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cds_service.content.terminology.model import Drug
from cds_service.fhir.coding import one_line
from cds_service.fhir.letters import as_matched

# First match wins: a "Sublingual Tablet" is sublingual, an "Ophthalmic Solution" ophthalmic.
# Each route's words, whole; "inhal" begins any word of its own (inhaler, inhalation).
ROUTES = (
    ("ophthalmic", ("ophthalmic", "eye drop", "eye drops")),
    ("otic", ("otic", "ear drop", "ear drops")),
    ("sublingual", ("sublingual",)),
    ("buccal", ("buccal",)),
    ("transdermal", ("transdermal",)),
    ("nasal", ("nasal",)),
    ("rectal", ("rectal",)),
    ("vaginal", ("vaginal",)),
    ("inhalation", ("inhal",)),
    ("injectable", ("injectable", "injection", "prefilled syringe", "cartridge", "auto-injector")),
    ("topical", ("topical", "cream", "ointment", "lotion")),
    ("oral", ("oral", "tablet", "capsule", "pill", "elixir", "syrup")),
)
_ROUTE_OF = {word: (rank, route) for rank, (route, words) in enumerate(ROUTES) for word in words}


def route_named(name: str) -> str | None:
    """The route a name states; None when it states none (an RxNorm component, most free text).
    Every route's words in one pass (twelve passes took 0.9 s on 1 MB of "1.")."""
    first = min((_ROUTE_OF[m.group(1).lower()] for m in _ROUTE_WORDS.finditer(name)), default=None)
    return first[1] if first else None


# RxNorm spells the release form out; order text often abbreviates it (upper case only, so that
# ordinary words are not read as one).
# A word's first letter looked at first: most words' start is no more than that. "24 hr" beside a
# dose form ("24 hr capsule", "cap 24 hr") is an extended-release product; "max 3 per 24 hr" and
# "q 24 hr tablets" are not (the reviews of this pass).
_SUBLINGUAL = re.compile(r"\b(?=(?i:s))(?:(?i:sublingual)|SL)\b")
_EXTENDED = re.compile(
    r"\b(?=(?i:[ecstx12]))(?:(?i:extended[- ]release"
    r"|(?<!q )(?<!every )(?<!per )(?:12|24)[- ]?(?:hr|hour)(?=[\s,]+(?:oral\s+)?(?:capsule|tablet|cap|tab)s?\b)"
    r"|(?:capsule|tablet|cap|tab)s?[\s,]+(?:12|24)[- ]?(?:hr|hour))"
    r"|ER|XR|XL|SR|CR)\b"
)


def release_named(name: str) -> str | None:
    """ "sublingual", "extended" or None (not stated) as the name says."""
    if _SUBLINGUAL.search(name):
        return "sublingual"
    return "extended" if _EXTENDED.search(name) else None


def says_sublingual(name: str, brands: tuple[str, ...] = ()) -> bool:
    """Asked of every update's drug names: most have neither "SL" nor "sublingual", which a
    substring scan in C tells before the pattern (1.6 µs a name) is tried. ``brands``: sublingual
    brands that say it too (``NameReader.sublingual_brands``), for an order that names one."""
    if ("SL" in name or "ublingual" in name.lower()) and _SUBLINGUAL.search(name) is not None:
        return True
    return bool(brands) and _brands_said(brands).search(name) is not None


# The same words, with the comma they may stand after, or the brackets they stand in whole when
# those state no number ("10 mg tablet (sublingual use)": a "( use)" was left; "(10 mg, SL)" keeps
# its 10 mg). Linear: a bracket is looked into only once it is known to close with no number (a
# possessive scan, which stops at the next bracket), and the words after a comma are tried from the
# first of a run of separators only: from each, a name with 20,000 spaces took 12 s (a code review).
# A sublingual brand is said as "SL" is.
_SAID = r"(?i:\bsublingual\b)|\bSL\b"
# A "not" before them goes with them: "10 mg oral tablet - NOT Tonmya" was sent back as "... - NOT".
_NOT = r"(?i:\bnot\b)[\s:-]*"


@lru_cache(maxsize=32)
def _sublingual_said(brands: tuple[str, ...]) -> re.Pattern[str]:
    said = f"{_SAID}|{_brands_said(brands).pattern}" if brands else _SAID
    return re.compile(rf"\((?=[^()\d]*+\))[^()\d]*?(?:{said})[^()\d]*+\)|(?<![\s,;])[\s,;]*(?:{_NOT})?(?:{said})")


@lru_cache(maxsize=32)
def _brands_said(brands: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(rf"(?i:{_any_of(brands)}\b)")


def without_sublingual(name: str, brands: tuple[str, ...] = ()) -> str:
    """``name`` without the words that say sublingual, the rest as written: for a drug read as
    another form, "cyclobenzaprine 10 mg tablet SL" (no sublingual product comes in 10 mg) names
    what was read, "cyclobenzaprine 10 mg tablet"; ``brands`` are such words too. "" where those
    words were all it said."""
    said = _sublingual_said(brands)
    spaced = " ".join(said.sub(" ", name).split()).replace("( ", "(").replace(" )", ")")
    return re.sub(r" (?=[,;])", "", spaced).strip(" ,;-/")


def name_as_read(name: str, drug: Drug, brands: tuple[str, ...] = ()) -> str:
    """``name`` naming ``drug`` as it was read, not as sublingual (``without_sublingual``); ""
    where nothing sensible is left. Without a sublingual brand its codes rule out, the rest must
    still name one of the drug's ingredients and no strength but the one read: "cyclobenzaprine
    10 mg tablet (Tonmya)" beside the oral 10 mg tablet's code does, but "Tonmya 2.8 mg" leaves
    "2.8 mg", the strength of the product ruled out, and no drug."""
    named = without_sublingual(name, brands)
    if not named or not brands or _brands_said(brands).search(name) is None:
        return named
    if not any(re.search(rf"\b{re.escape(i)}\b", named, re.IGNORECASE) for i in drug.ingredients):
        return ""
    stated = {float(mg.replace(",", ".")) for mg in _MG.findall(named)}
    return named if drug.strength_mg is None or stated <= {drug.strength_mg} else ""


@dataclass(frozen=True)
class Brand:
    """A brand name and what it stands for: Amrix is extended-release cyclobenzaprine."""

    ingredients: tuple[str, ...]
    release: str | None = None
    # A brand made in one strength only (Tonmya 2.8 mg) gives it; else the order's text must.
    strength_mg: float | None = None


def words(names: Iterable[str]) -> re.Pattern[str]:
    """Any of ``names`` as whole words, case-insensitive, the longest first."""
    return re.compile(rf"{_any_of(names)}\b", re.IGNORECASE)


def _any_of(names: Iterable[str]) -> str:
    """A pattern of any of ``names`` from a word's start, the longest first, in group 1: a trie of
    their letters behind a look at the first. An alternation of each name whole was tried name by
    name at every word's start, and 1 MB of "1." (a word each two characters) took 5 s to read
    (an adversarial review); a trie tries one alternative a next letter. Letters match in either
    ASCII case only: a name is looked up by its match in lower case, and "\u017foma" (a long s),
    which a case-blind "soma" matched, was no key: a 500."""
    trie: dict[str, Any] = {}
    for name in set(names):
        node = trie
        for letter in name.lower():
            node = node.setdefault(letter, {})
        node[""] = {}  # a name ends here
    if not trie:
        return "(?!)"
    first = "".join(sorted(map(re.escape, trie)))
    return rf"\b(?a:(?=[{first}])({_longest_first(trie)}))"


def _longest_first(node: dict[str, Any]) -> str:
    """A trie's names as a pattern: a longer name before the one ending here (``?`` is greedy,
    and backtracks to it when the longer is not a whole word). Letters no name branches or ends at
    are one literal: a group a letter nested as deep as the longest name, and a site's brand of
    600 letters stopped start-up (RecursionError; a code review)."""
    longer = []
    for letter, rest in sorted(node.items()):
        if not letter:
            continue
        run = letter
        while len(rest) == 1 and "" not in rest:
            [(letter, rest)] = rest.items()
            run += letter
        longer.append(re.escape(run) + _longest_first(rest))
    if not longer:
        return ""
    return f"(?:{'|'.join(longer)}){'?' if '' in node else ''}"


_ROUTE_WORDS = re.compile(rf"{_any_of(_ROUTE_OF)}(?:(?<=inhal)\w*)?\b", re.IGNORECASE)


class NameReader:
    """Identifies a medication by the ingredients and brands its text names (clinical
    specification §1: when no code is known, word match, case-insensitive)."""

    def __init__(self, ingredients: Iterable[str], brands: dict[str, Brand], relevant: frozenset[str]) -> None:
        self._ingredients = words(ingredients)
        self._brands = {name.lower(): brand for name, brand in brands.items()}
        self._brand_words = words(brands)
        self._sublingual_brands = {
            name.lower(): name for name, brand in brands.items() if brand.release == "sublingual"
        }
        self._sublingual_words = words(self._sublingual_brands)
        self._sublingual_anywhere = re.compile("|".join(map(re.escape, self._sublingual_brands)))
        self._relevant = relevant
        # The strengths a sublingual product of an ingredient comes in (Tonmya: 2.8 mg).
        self._sublingual_mg: dict[str, set[float]] = {}
        for brand in brands.values():
            if brand.release == "sublingual" and brand.strength_mg is not None:
                self._sublingual_mg.setdefault(brand.ingredients[0], set()).add(brand.strength_mg)

    def drug(self, label: str, rxcui: str | None = None, coded_mg: float | None = None) -> Drug | None:
        """The drug ``label`` names; ``coded_mg`` a strength its code gives (a component's), which
        its "SL" must fit as the words' own strengths must. Read as matched (``as_matched``: a soft
        hyphen or full-width letters hid a drug), named as written: the card and an update show
        the record's own words."""
        written = label
        for label in as_matched(written):  # the first reading that names a drug
            found: list[tuple[int, tuple[str, ...]]] = [
                (m.start(), (m.group(1).lower(),)) for m in self._ingredients.finditer(label)
            ]
            brands = [(m.start(), self._brands[m.group(1).lower()]) for m in self._brand_words.finditer(label)]
            found += [(at, brand.ingredients) for at, brand in brands]
            if found:
                break
        else:
            return None
        # In the order the text names them, each once.
        named = list(dict.fromkeys(i for _, ingredients in sorted(found) for i in ingredients))
        # The ingredient the card names and the strength belongs to: a relevant one first.
        primary = next((i for i in named if i in self._relevant), named[0])
        releases = {release_named(label), *(brand.release for _, brand in brands)} - {None}
        # A sublingual brand named is its own strength, but never a code's other one (Tonmya
        # beside the 10 mg component is that tablet, wrongly named).
        if "sublingual" in releases and (coded_mg or not any(brand.release == "sublingual" for _, brand in brands)):
            releases -= self._no_such_sublingual(primary, label, coded_mg)
        strengths = {brand.strength_mg for _, brand in brands if brand.ingredients[0] == primary}
        return Drug(
            ingredient=primary,
            ingredients=tuple(named),
            name=one_line(written),
            rxcui=rxcui,
            strength_mg=strengths.pop() if len(strengths) == 1 else None,
            extended_release="extended" in releases,
            sublingual="sublingual" in releases,
            route="sublingual" if "sublingual" in releases else route_named(label),
        )

    def names_brand(self, label: str) -> bool:
        """Does ``label`` name a brand (RxNorm's "Amrix Pill", "15 MG [Amrix]")? A brand's products
        have their release: the words of an order do not change it."""
        return any(self._brand_words.search(reading) for reading in as_matched(label))

    def sublingual_brands(self, labels: Iterable[str]) -> tuple[str, ...]:
        """The sublingual brands ``labels`` name (Tonmya), as the terminology spells them. Asked of
        every drafted drug: a substring scan in C tells most labels name none (0.4 µs against the
        pattern's 4 a label), and the pattern then finds the whole words."""
        brands, anywhere = self._sublingual_brands, self._sublingual_anywhere.search
        said = [label for label in labels if anywhere(label.lower())]
        found = (m.group(1).lower() for label in said for m in self._sublingual_words.finditer(label))
        return tuple(dict.fromkeys(brands[name] for name in found))

    def sublingual_mg(self, ingredient: str) -> float | None:
        """The one strength ``ingredient``'s sublingual tablets come in (Tonmya's 2.8 mg), else None."""
        known = self._sublingual_mg.get(ingredient, set())
        return next(iter(known)) if len(known) == 1 else None

    def _no_such_sublingual(self, ingredient: str, label: str, coded_mg: float | None) -> set[str]:
        """{"sublingual"} when the words' "SL" cannot be so: they state a strength no sublingual
        product of the ingredient has ("cyclobenzaprine 10 mg tablet SL": Tonmya is 2.8 mg only),
        read as the oral tablet, the duration card and the 5 mg swap with it, not as Tonmya."""
        known = self._sublingual_mg.get(ingredient)
        # The code's strength where it gives one: the words' own ("Tonmya 2.8 mg" beside the 10 mg
        # component) do not make the coded tablet another.
        stated = (
            [coded_mg]
            if coded_mg
            else [v for mg in _MG.findall(label) if math.isfinite(v := float(mg.replace(",", ".")))]
        )
        # A dose of the product's tablets ("5.6 mg SL", two of 2.8 mg) is its strength too.
        of_it = any(round(mg / k) >= 1 and abs(mg / k - round(mg / k)) < 1e-6 for mg in stated for k in known or ())
        return {"sublingual"} if known and stated and not of_it else set()


# From the start of a number only: tried from each digit, 16,000 digits took 8 s.
_MG = re.compile(r"(?<!\d)(?<!\d[.,])(\d+(?:[.,]\d+)?)\s*mg\b", re.IGNORECASE)  # "tablet,10 mg" too
