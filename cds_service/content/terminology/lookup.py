"""The questions rules ask of the terminology, each answered with a set or dict lookup."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from functools import lru_cache

from cds_service.content.terminology.model import KNOWN_CODES, CodeConcept, Drug, LocalExclusion, SiteOmission
from cds_service.content.terminology.names import NameReader
from cds_service.fhir.coding import RXNORM, Code, code_key, one_line


def _exactness(drug: Drug) -> int:
    """A prescribable product (a dose form), then a component (a strength), then a dose form group
    (a route: "Amrix Pill" says extended release), then an ingredient."""
    if drug.dose_form is not None:
        return 0
    return 1 if drug.strength_mg is not None else 2 if drug.route is not None else 3


def _with_release(component: Drug, groups: list[Drug]) -> Drug:
    """A component (a strength, no dose form) or a dose form group with the release, route and
    strength what is listed beside it says (a group of its ingredient, the order's words): Epic
    listing the 15 mg component and "Amrix Pill" but no product read an extended-release capsule
    as immediate release. RxNorm's "Pill" group holds sublingual tablets too ("cyclobenzaprine
    Pill" beside "Tonmya ... sublingual tablet" was read as oral, its long course cut)."""
    if not groups:
        return component
    sublingual = component.sublingual or any(g.sublingual for g in groups)
    return dataclasses.replace(
        component,
        extended_release=component.extended_release or any(g.extended_release for g in groups),
        sublingual=sublingual,
        route="sublingual" if sublingual else component.route or next((g.route for g in groups if g.route), None),
        strength_mg=component.strength_mg or next((g.strength_mg for g in groups if g.strength_mg), None),
    )


class Terminology:
    def __init__(
        self,
        *,
        products: dict[str, Drug],
        local_products: dict[tuple[str, str], Drug],
        local_exclusions: tuple[LocalExclusion, ...],
        site_omissions: tuple[SiteOmission, ...],
        ingredient_codes: dict[str, str],
        medication_concepts: dict[str, frozenset[str]],
        code_concepts: dict[str, CodeConcept],
        timing_codes: dict[str, float],
        names: NameReader,
    ) -> None:
        self.products = products
        self.local_products = local_products
        # What the site's local codes take out of the shipped concepts: said at every start.
        self.local_exclusions = local_exclusions
        # What a site's own terminology folder leaves out of the shipped concepts: said likewise.
        self.site_omissions = site_omissions
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
        self._reader = names
        self._concepts: dict[tuple[Code, ...], frozenset[str]] = {}
        self._relevance: dict[tuple[Code, ...], bool] = {}

    def drug(self, codings: Iterable[Code], text: str | None = None) -> Drug | None:
        """Identify a medication by RxNorm product or ingredient code, a site's local code, else
        by the ingredients or brands named in its text or displays."""
        return self._drug(tuple(codings), text)

    # Per process, bounded: a history names the same products over and over. Terminology lives
    # as long as the process, so the cache holding ``self`` costs nothing.
    @lru_cache(maxsize=16384)  # noqa: B019
    def _drug(self, codings: tuple[Code, ...], text: str | None) -> Drug | None:
        coded: list[Drug] = []
        for coding in codings:
            key = code_key(coding.system, coding.code)
            if key in self.local_products:
                return self.local_products[key]
            if key[0] != RXNORM:
                continue
            if coding.code in self.products:
                coded.append(self.products[coding.code])
            elif coding.code in self.ingredient_codes:
                name = self.ingredient_codes[coding.code]
                coded.append(
                    Drug(ingredient=name, name=one_line(coding.display or text or name) or name, rxcui=coding.code)
                )
        # The most exact code, wherever it is listed: Epic lists a product's ingredient code
        # (cyclobenzaprine, 21949) before the product's own, and the ingredient alone knows no
        # strength, release or route (a Tonmya read as oral cyclobenzaprine of unknown dose).
        best = min(coded, key=_exactness, default=None)
        if best is not None and _exactness(best) == 0:
            return best
        if best is not None and _exactness(best) < 3:
            # Named as the order names it: RxNorm's name of a component or a group ("Amrix Pill")
            # is no product a prescriber wrote. A component takes what a group of it adds.
            groups = [d for d in coded if _exactness(d) == 2 and d.ingredient == best.ingredient]
            # "15 MG [Amrix]": a brand's release. The order's words only where no code states one:
            # "Tonmya" beside Amrix's 30 mg component or "Amrix Pill", or "ER" beside "Flexeril
            # Pill", would override a code that rules it out (an adversarial review).
            branded = self._reader.drug(best.name)
            groups += [branded] if branded is not None and branded.ingredient == best.ingredient else []
            if text and not self._reader.names_brand(" ".join(d.name for d in (best, *groups))):
                said = self._reader.drug(text, coded_mg=best.strength_mg)
                groups += [said] if said is not None and said.ingredient == best.ingredient else []
            drug = _with_release(best, groups)
            return dataclasses.replace(drug, name=one_line(text)) if text and text.strip() else drug
        named = next(
            filter(None, (self._reader.drug(label) for label in (text, *(c.display for c in codings)) if label)), None
        )
        if best is None or named is None or named.ingredient != best.ingredient:
            return best or named  # codes before words
        # What the words add to an ingredient's code alone, which says nothing of strength, release,
        # route or other ingredients (carisoprodol with codeine); never against a code that says.
        return dataclasses.replace(named, rxcui=best.rxcui)  # named as the words name it: the codeine shows

    def sublingual_brands(self, labels: Iterable[str]) -> tuple[str, ...]:
        """The sublingual brands (Tonmya) a drug's words name."""
        return self._reader.sublingual_brands(labels)

    def sublingual_mg(self, drug: Drug) -> float | None:
        """A sublingual tablet's strength: its own, else the one its ingredient's sublingual tablets
        come in ("cyclobenzaprine ... sublingual", no brand named, is Tonmya's 2.8 mg)."""
        return drug.strength_mg or self._reader.sublingual_mg(drug.ingredient)

    def is_medication(self, concept: str, drug: Drug | None) -> bool:
        """Is the drug, or any relevant ingredient of a combination product, of the concept?"""
        return drug is not None and not self.medication_concepts[concept].isdisjoint(drug.ingredients)

    def concepts_of_drug(self, drug: Drug) -> frozenset[str]:
        """Every medication concept the drug, or any relevant ingredient of it, is in."""
        concepts = self.medication_concepts.items()
        return frozenset(name for name, members in concepts if not members.isdisjoint(drug.ingredients))

    def ingredients_of(self, concept: str, drug: Drug | None) -> tuple[str, ...]:
        """The drug's ingredients of the concept, to name on a card (codeine, not carisoprodol,
        when a combination counts as an opioid)."""
        members = self.medication_concepts[concept]
        return tuple(i for i in drug.ingredients if i in members) if drug is not None else ()

    def in_concept(self, concept: str, codes: Iterable[Code], text: str | None = None) -> bool:
        # Orders' and procedures' codes (a condition carries its concepts): tuples, already worked out.
        found = self._concepts.get(codes) if type(codes) is tuple else None
        if found is None:
            found = self.concepts_of(codes)
        return concept in found or bool(text and self.code_concepts[concept].named_in(text))

    def concepts_of(self, codes: Iterable[Code]) -> frozenset[str]:
        """Every concept any of the codes is in: what a condition carries (``Condition.concepts``),
        worked out once per process for each set of codes."""
        key = codes if type(codes) is tuple else tuple(codes)
        found = self._concepts.get(key)
        if found is None:
            if len(self._concepts) >= KNOWN_CODES:
                self._concepts.clear()
            keys = [code.key for code in key]
            found = frozenset(name for name, members in self.code_concepts.items() if any(k in members for k in keys))
            self._concepts[key] = found
        return found

    def matching(self, concept: str, codes: Iterable[Code]) -> Code | None:
        members = self.code_concepts[concept]
        return next((code for code in codes if code.key in members), None)

    def relevant(self, codes: tuple[Code, ...]) -> bool:
        """Does any rule read one of these codes? What lets the facts skip the rest of a history;
        asked of every entry, so answered once per code set (a history repeats a few)."""
        found = self._relevance.get(codes)
        if found is None:
            if len(self._relevance) >= KNOWN_CODES:
                self._relevance.clear()
            found = self._relevance[codes] = any(code.key in self._relevant for code in codes)
        return found

    def is_relevant_text(self, text: str) -> bool:
        """Is a concept that is recognised by name (physical therapy) named in ``text``?"""
        lowered = text.lower()
        return bool(text) and any(name in lowered for name in self._names)
