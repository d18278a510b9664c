"""What the terminology answers with: a drug as the rules see it, and a set of codes."""

from __future__ import annotations

from dataclasses import dataclass, field

# Eye and ear preparations act locally: the tizanidine rule leaves them out (clinical
# specification §2, "not ear or eye preparations").
LOCAL_ROUTES = frozenset({"ophthalmic", "otic"})


class TerminologyError(ValueError):
    """A terminology file is missing, malformed or refers to something that does not exist."""


@dataclass(frozen=True)
class Drug:
    """What a medication is, as far as the rules care."""

    # The relevant ingredient the strength belongs to (a combination product's first one).
    ingredient: str
    name: str
    rxcui: str | None = None
    strength_mg: float | None = None
    extended_release: bool = False
    dose_form: str | None = None
    # The sublingual tablet (Tonmya): its own dose limits and indication (clinical specification §1).
    sublingual: bool = False
    # Every relevant ingredient the product names, ``ingredient`` first: a combination product
    # (codeine with carisoprodol) counts for each of them.
    ingredients: tuple[str, ...] = ()
    # As the product name states it: oral, sublingual, ophthalmic, otic, injectable, ... (None: unknown).
    route: str | None = None

    def __post_init__(self) -> None:
        if not self.ingredients or self.ingredients[0] != self.ingredient:
            rest = tuple(i for i in self.ingredients if i != self.ingredient)
            object.__setattr__(self, "ingredients", (self.ingredient, *rest))

    @property
    def systemic(self) -> bool:
        """Not an eye or ear preparation (an unknown route counts as systemic: the safe side)."""
        return self.route not in LOCAL_ROUTES


# Codes whose membership each concept remembers (a few hundred kB at most).
KNOWN_CODES = 4096


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
    # Answers already worked out: a patient's history asks about the same few codes again and
    # again (each Condition against each concept a rule reads), ranges and prefixes each time.
    _known: dict[tuple[str, str], bool] = field(default_factory=dict, repr=False, compare=False)

    def __contains__(self, key: tuple[str, str]) -> bool:
        known = self._known.get(key)
        if known is None:
            if len(self._known) >= KNOWN_CODES:
                self._known.clear()
            known = self._known[key] = self._member(key)
        return known

    def _member(self, key: tuple[str, str]) -> bool:
        if key in self.excluded or under(key, self.excluded_prefixes):
            return False
        if key in self.codes or under(key, self.prefixes):
            return True
        system, code = key
        return any(s == system and len(lo) == len(code) and lo <= code <= hi for s, lo, hi in self.ranges)

    def listed(self) -> set[tuple[str, str]]:
        """The listed codes and prefixes the exclusions leave in, worked out afresh (not from the
        answers remembered): read while a site's exclusions are taken out at start-up."""
        return {key for key in self.codes | self.prefixes if self._member(key)}

    def left_out(self, shipped: CodeConcept) -> list[tuple[str, str]]:
        """The shipped concept's listed codes and prefixes this one does not recognise, worked
        out afresh (read at start-up, before a site's local codes change this one)."""
        return sorted(key for key in shipped.listed() if not self._member(key))

    def named_in(self, text: str) -> bool:
        lowered = text.lower()
        return any(name in lowered for name in self.names)


@dataclass(frozen=True)
class LocalExclusion:
    """A code or prefix a site's local codes file takes out of a shipped concept: the rules that
    read the concept no longer see it, so every start says so (a clinical safety review)."""

    where: str  # the file and the concept, "local.toml: condition.heart-failure"
    field: str  # "exclude" or "exclude_prefixes"
    system: str
    code: str  # as the site wrote it
    removed: int  # of the codes and prefixes the shipped lists name
    shipped: int
    within: tuple[str, ...]  # the shipped prefixes it narrows (a code under them taken out)

    def __str__(self) -> str:
        within = f", and narrows its shipped prefix {', '.join(self.within)}" if self.within else ""
        return (
            f"local codes {self.where}: {self.field} {self.code} ({self.system}) takes out {self.removed} of the "
            f"{self.shipped} codes and prefixes the shipped concept lists{within}; the rules reading it no longer "
            "see them (docs/configuration.md#local-codes)"
        )


@dataclass(frozen=True)
class SiteOmission:
    """Codes and prefixes of a shipped concept a site's own ``terminology/`` folder no longer
    recognises: it replaces the shipped lists whole (a documented choice, not refused), but a copy
    leaving out heart failure's codes silenced a critical card with no word, so every start says so."""

    where: str  # the site's file and the concept, ".../concepts/cardiac.toml: condition.heart-failure"
    left_out: tuple[str, ...]  # as the shipped files write them
    shipped: int

    def __str__(self) -> str:
        shown = ", ".join(self.left_out[:5]) + (", …" if len(self.left_out) > 5 else "")
        return (
            f"site terminology {self.where}: leaves out {len(self.left_out)} of the {self.shipped} codes and "
            f"prefixes the shipped concept lists ({shown}); the rules reading it no longer see them "
            "(docs/configuration.md#card-text)"
        )


def under(key: tuple[str, str], prefixes: set[tuple[str, str]]) -> bool:
    """Is the code one of ``prefixes`` or under one? Codes are short: try each leading part."""
    system, code = key
    return bool(prefixes) and any((system, code[:n]) in prefixes for n in range(1, len(code) + 1))
