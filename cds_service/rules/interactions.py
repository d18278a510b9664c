"""What the interaction rules share: the drugs a patient takes, or is being ordered, alongside
the order under review (clinical specification §2: "active, or in another draft order").

An interaction card names the other drug and says how the service knows of it ("ordered now",
"since 2026-06-01", "active on the medication list, start date not recorded"), so the
clinician can check the record the card relied on. It names a few and counts the rest ("and 3
more", ``content.markdown.named``): a card's words must not grow with the order session, or
5,000 drafts of one drug make each of 5,000 cards name 4,999 others (issue 16). That bound is
the pipeline's too: the card-limit card names the rules' titles with it, the notices the drafts,
drugs and conditions they speak of.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from cds_service.content.markdown import named
from cds_service.content.terminology import Drug, Terminology
from cds_service.facts.history import START_UNRECORDED
from cds_service.facts.model import Order, PatientContext
from cds_service.rules.common import date_shown


@dataclass(frozen=True)
class Alongside:
    """A drug taken or ordered alongside the order under review, and where it was found."""

    drug: Drug
    # The other draft order or the course's MedicationRequest.
    reference: str
    # The start of an active course; None for another draft order ("ordered now").
    since: date | None = None
    # The other draft order is itself under review in this call.
    under_review: bool = False
    # How much of the start's date was recorded (``Course.start_parts``): shown as much.
    since_parts: int = 3
    # The course's status, said unless active ("on hold on the medication list", "completed; ...").
    status: str = "active"
    # The days its course was assumed to last, its length not recorded (clinical specification §1).
    assumed_days: int | None = None
    # The course's last day, said of one not active: how long it is counted as running. None where
    # it is past, and the course counted as running all the same (an as-needed order still listed).
    until: date | None = None
    # A course in force dated after today (``PatientContext.active_courses``): not "since" a day to come.
    ahead: bool = False

    @property
    def label(self) -> str:
        return f"{self.drug.name} ({self.found_as})"

    @property
    def found_as(self) -> str:
        """How the service knows of it: the card's words for the record it relied on."""
        if self.since is None:
            return "ordered now"
        if not self.since_known:
            return listed_undated(self.status)
        if self.status == "active":  # dated after today: not "since" a day to come
            said = f"active; course from {self.since_shown}" if self.ahead else f"since {self.since_shown}"
        else:  # a finished order, or one on hold, counted as running by its dates: it says so
            until = f" to {self.until.isoformat()}" if self.until and self.since_parts == 3 else ""
            said = f"{self.status.replace('-', ' ')}; course {'' if until else 'from '}{self.since_shown}{until}"
        if self.assumed_days is not None:
            said += f", length not recorded: {self.assumed_days} days assumed"
        return said

    @property
    def since_known(self) -> bool:
        """A course's start was recorded, in part at least (``Course.start_known``)."""
        return self.since_parts != START_UNRECORDED

    @property
    def since_shown(self) -> str:
        return date_shown(self.since, self.since_parts) if self.since and self.since_known else ""


def listed_undated(status: str) -> str:
    """A course still listed whose start no date records, as every card says it."""
    return f"{status.replace('-', ' ')} on the medication list, start date not recorded"


def alongside(
    context: PatientContext, order: Order, terminology: Terminology, concepts: Iterable[str]
) -> list[Alongside]:
    """Drugs of any of ``concepts`` in the other draft orders or in an active course today."""
    concepts = tuple(concepts)

    def wanted(drug: Drug | None) -> bool:
        return any(terminology.is_medication(concept, drug) for concept in concepts)

    reviewed = {o.reference for o in context.under_review}
    found = [
        Alongside(d.drug, d.reference, None, d.reference in reviewed)
        for d in context.drafts
        if d.reference != order.reference and d.drug is not None and wanted(d.drug)
    ]
    found += [
        Alongside(
            c.drug,
            c.reference,
            c.start,
            since_parts=c.start_parts,
            status=c.status,
            assumed_days=(c.end - c.start).days if c.assumed_end else None,
            until=c.last_day if c.end > context.today else None,
            ahead=c.start > context.today,
        )
        for c in context.active_courses
        if not c.concepts.isdisjoint(concepts)
    ]
    return found


def drug_subject(found: Iterable[Alongside], terminology: Terminology, concepts: Iterable[str]) -> frozenset[str]:
    """The ingredients of ``concepts`` the drugs found hold (``Finding.subject``): codeine, not
    carisoprodol, of a combination counted as an opioid; the drug's own ingredient when its
    product names none of them (a course read by its concepts)."""
    concepts = tuple(concepts)
    return frozenset(
        ingredient
        for a in found
        for ingredient in ([i for c in concepts for i in terminology.ingredients_of(c, a.drug)] or [a.drug.ingredient])
    )


def ingredients(found: Iterable[Alongside]) -> str:
    """The ingredients, each once, in the order found: short enough for a card's summary."""
    return named(dict.fromkeys(a.drug.ingredient for a in found), ", ")


def labels(found: Iterable[Alongside]) -> str:
    """Each drug found and where (``Alongside.label``), a few of them named and the rest counted."""
    return named((a.label for a in found), "; ")
