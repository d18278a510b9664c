"""Card text from ``cards/`` (a site's own files over it), loaded and checked at start-up.

Each rule id has a file ``cards/<rule-id>.toml``: title, evidence keys, override reasons and per
variant its indicator, summary, detail, suggestion labels (and the evidence it cites, if only
some), with ``{placeholders}`` for the rule's facts; ``cards/update-notes.toml`` what a card adds
of an update it offers (``content.notes``). ``pipeline.cards`` renders it. Any gap or
inconsistency stops start-up with the file and field named.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

from cds_service.content.evidence import Evidence, load_evidence
from cds_service.content.notes import NOTES_FILE, Note, load_notes
from cds_service.content.reading import CardContentError, placeholders, read_toml
from cds_service.content.site_files import content_files, keep_shipped_terms
from cds_service.fhir.json import as_obj

RULE_TOPIC_SYSTEM = "urn:back-spasm-cds:rule"
OVERRIDE_REASON_SYSTEM = "urn:back-spasm-cds:override-reason"
SOURCE_LABEL = "Back spasm CDS"
INDICATORS = ("critical", "warning", "info")
SUMMARY_LIMIT = 140
# The keys a variant's ``suggestions`` table may use: the other choices rules offer besides the
# variant's ``suggestion`` (``Proposal.label``). A misspelt key would drop its one-click action.
OTHER_SUGGESTIONS = ("remove",)
# A fact counted as a date's length (numbers are shorter; names may be longer: ``pipeline.cards``
# cuts such a summary at a word and logs it). A summary must stay under the limit even so.
_WIDEST_FACT = "2026-11-21"


@dataclass(frozen=True)
class Variant:
    indicator: str
    summary: str
    detail: str
    # Suggestion labels by ``Proposal.label``: "suggestion" (the variant's ``suggestion``) and
    # the keys of its ``suggestions`` table, for a card that offers more than one choice.
    suggestions: dict[str, str]
    # The evidence keys this variant cites, when only some of its file's apply; None: all of them.
    evidence: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RuleText:
    rule_id: str
    title: str
    evidence: tuple[Evidence, ...]
    override_reasons: tuple[dict[str, str], ...]
    variants: dict[str, Variant]


# What a rule's file and each of its variants may hold: a misspelt key ("sugestion") dropped its
# one-click action, or all of a card's override reasons, without a word.
_FILE_KEYS = ("title", "evidence", "override_reasons", "variants")
_VARIANT_KEYS = ("indicator", "summary", "detail", "suggestion", "suggestions", "evidence")


def _no_stray_keys(where: str, data: dict[str, Any]) -> None:
    stray = sorted(set(data) - set(_FILE_KEYS))
    if stray:
        raise CardContentError(f"{where}: unknown keys {stray}, not one of {_FILE_KEYS}")
    for name, raw in as_obj(data.get("variants")).items():
        stray = sorted(set(as_obj(raw)) - set(_VARIANT_KEYS))
        if stray:
            raise CardContentError(f"{where}: variants.{name} has unknown keys {stray}, not one of {_VARIANT_KEYS}")
        stray = sorted(set(as_obj(as_obj(raw).get("suggestions"))) - set(OTHER_SUGGESTIONS))
        if stray:
            raise CardContentError(f"{where}: variants.{name}.suggestions has {stray}, not one of {OTHER_SUGGESTIONS}")


def _load_rule(
    path: Traversable,
    evidence: dict[str, Evidence],
    reasons: dict[str, Any],
    keyed_in: tuple[Traversable, ...],
    shipped: Traversable | None,
) -> RuleText:
    """``keyed_in``: the evidence and reasons files read (a site's or the shipped), named when a key is not in them;
    ``shipped``: the shipped file of its name when a site's folder is read, whose severities and choices it keeps."""
    where = str(path)  # the site's own copy or the shipped file: whichever is read
    data = read_toml(path)
    _no_stray_keys(where, data)
    try:
        variants = {}
        for name, raw in data["variants"].items():
            labels = dict(raw.get("suggestions", {}))
            if raw.get("suggestion"):
                labels["suggestion"] = raw["suggestion"]
            cited = raw.get("evidence")
            variant = Variant(
                raw["indicator"],
                raw["summary"].strip(),
                raw["detail"].strip(),
                labels,
                tuple(cited) if cited is not None else None,
            )
            stray = [key for key in variant.evidence or () if key not in data["evidence"]]
            if stray:
                raise CardContentError(f"{where}: variants.{name}.evidence names keys not in the file's {stray}")
            if variant.indicator not in INDICATORS:
                raise CardContentError(f"{where}: variants.{name}.indicator must be one of {INDICATORS}")
            widest = {f: _WIDEST_FACT for f in placeholders(variant.summary, f"{where}: variants.{name}.summary")}
            if (length := len(variant.summary.format(**widest))) >= SUMMARY_LIMIT:
                raise CardContentError(
                    f"{where}: variants.{name}.summary can reach {SUMMARY_LIMIT} characters ({length} with each "
                    f"{{fact}} counted as {len(_WIDEST_FACT)}): shorten it by {length - SUMMARY_LIMIT + 1} at least"
                )
            variants[name] = variant
        keep_shipped_terms(where, data, shipped)
        unknown = [key for key in data["evidence"] if key not in evidence]
        if unknown:
            raise CardContentError(f"{where}: evidence names unknown keys {unknown}, not in {keyed_in[0]}")
        missing = [code for code in data.get("override_reasons", []) if code not in reasons]
        if missing:
            raise CardContentError(f"{where}: override_reasons names unknown reasons {missing}, not in {keyed_in[1]}")
        return RuleText(
            rule_id=path.name.removesuffix(".toml"),
            title=data["title"],
            evidence=tuple(evidence[key] for key in data["evidence"]),
            override_reasons=tuple(
                {"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": reasons[code]["display"]}
                for code in data.get("override_reasons", [])
            ),
            variants=variants,
        )
    except KeyError as error:
        raise CardContentError(f"{where}: missing field {error}") from error


# The override reason that asks for the rule to stay quiet for this patient, and the only one
# that does (docs/operations.md, Feedback): its display names the rule's snooze days.
SNOOZE_REASON = "dont-show-again"
# The indicators of a card that may be quieted: snoozed, or not repeated at order-sign. A
# critical card never is (clinical specification §2): it is offered no "don't show again", and
# comes back on every call.
QUIETABLE = frozenset(("warning", "info"))


class CardCatalog:
    def __init__(
        self,
        texts: dict[str, RuleText],
        snooze_display: str,
        directory: Traversable,
        read: dict[str, Traversable],
        notes: dict[str, str],
    ) -> None:
        self.texts = texts
        self._notes = notes  # what a card adds of an update (``content.notes``)
        self._directory, self._read = directory, read  # named in errors: the file read is the one to edit
        # Its {days} is the rule's snooze period, so the clinician knows what they ask for.
        self._snooze_display = snooze_display

    def snooze_reason(self, days: int) -> str:
        """The display of the "don't show again" reason for a rule quiet ``days`` once chosen:
        one wording on the card and in the report."""
        return self._snooze_display.format(days=f"{days} day{'' if days == 1 else 's'}")

    def note(self, note: Note) -> str:
        """A note's text, its facts filled in (``load_notes`` checked that it names only those)."""
        return self._notes[note.key].format(**dict(note.facts))

    def require(self, rule_id: str, variants: Mapping[str, Iterable[str]]) -> None:
        """The rule's text is here, with every variant the rule produces, naming only the facts
        the rule fills for it: a gap stops start-up, never a hook call."""
        if rule_id not in self.texts:
            raise CardContentError(f"no card text for rule {rule_id} (expected {self._file(rule_id)})")
        texts = self.texts[rule_id].variants
        absent = set(variants) - set(texts)
        if absent:
            raise CardContentError(f"{self._file(rule_id)}: missing variants {sorted(absent)}")
        stray = sorted(set(texts) - set(variants))  # a misspelt variant's text would never show
        if stray:
            raise CardContentError(
                f"{self._file(rule_id)}: variants {stray} are not the rule's (it has {', '.join(variants)})"
            )
        for name, facts in variants.items():
            variant = texts[name]
            fields = {"summary": variant.summary, "detail": variant.detail}
            fields |= {
                ("suggestion" if key == "suggestion" else f"suggestions.{key}"): label
                for key, label in variant.suggestions.items()
            }
            for field, template in fields.items():
                where = f"{self._file(rule_id)}: variants.{name}.{field}"
                unknown = sorted(placeholders(template, where) - set(facts))
                if unknown:
                    known = ", ".join(f"{{{fact}}}" for fact in facts) or "none"
                    raise CardContentError(
                        f"{where} names {', '.join(f'{{{u}}}' for u in unknown)}, "
                        f"which this card does not have (it has: {known})"
                    )

    def _file(self, rule_id: str) -> str:
        name = f"{rule_id}.toml"
        return str(self._read.get(name, self._directory / name))

    def indicator(self, rule_id: str, variant: str) -> str:
        return self.texts[rule_id].variants[variant].indicator

    def evidence(self, rule_id: str, variant: str, keys: tuple[str, ...] | None) -> tuple[Evidence, ...]:
        """What a card cites: the file's evidence, narrowed by the variant's list and by the
        finding's ``keys`` (e.g. the label of the product ordered), in the file's order; when the
        two narrowings share nothing, the finding's, the most specific. Keys outside the file's
        evidence are a content error."""
        text = self.texts[rule_id]
        by_key = {e.key: e for e in text.evidence}
        stray = [key for key in keys or () if key not in by_key]
        if stray:
            raise CardContentError(f"{self._file(rule_id)}: a {variant} card cites {stray}, not in the file's evidence")
        narrowed = text.variants[variant].evidence
        chosen = [
            e for e in text.evidence if (keys is None or e.key in keys) and (narrowed is None or e.key in narrowed)
        ]
        return tuple(chosen) if chosen else tuple(by_key[key] for key in keys or ())


def load_catalog(directory: Traversable, shipped: Traversable | None = None) -> CardCatalog:
    """The card text of ``directory``; a site's folder holds only the files it rewords, the rest
    read from ``shipped`` (a full copy froze every other card's fixes at the day it was made)."""
    read = content_files(directory, shipped)
    keyed_in = tuple(read.get(name, directory / name) for name in ("evidence.toml", "override-reasons.toml"))
    notes = load_notes(read.get(NOTES_FILE, directory / NOTES_FILE))
    evidence, reasons = load_evidence(keyed_in[0]), read_toml(keyed_in[1])
    texts = {}
    for name, path in sorted(read.items()):
        if name.endswith(".toml") and name not in ("evidence.toml", "override-reasons.toml", NOTES_FILE):
            under = shipped / name if shipped is not None else None
            texts[name.removesuffix(".toml")] = _load_rule(path, evidence, reasons, keyed_in, under)
    display = reasons.get(SNOOZE_REASON, {}).get("display", "")
    where = directory / "override-reasons.toml"
    if placeholders(display, f"{where}: [{SNOOZE_REASON}].display") != {"days"}:
        raise CardContentError(f"{where}: [{SNOOZE_REASON}] needs a display with {{days}}")
    return CardCatalog(texts, reasons[SNOOZE_REASON]["display"], directory, read, notes)
