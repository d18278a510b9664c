"""The rules: one module per rule id, each a pure function of the patient context.

A rule answers "does this order deserve this card, and with which facts?" and proposes the
suggestion's FHIR actions. The words of the card live in ``cards/<rule-id>.toml``; the two are
joined by the rule id, which is also the card's ``source.topic.code`` and the rule's key in
configuration (``[rules.<rule-id>]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Generic, TypeVar

from pydantic import ConfigDict, Field

from cds_service.content.terminology import Drug, Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.protocol.services import SERVICES
from cds_service.settings_values import StrictValues

# Every hook a service is declared for (protocol/services.py): a rule runs on all unless it says.
HOOKS = frozenset(service.hook for service in SERVICES.values())
# A finding's limit as a change to an update of its order, given the product a swap changed it
# to (None: the draft's), whose tablets the update counts (``Finding.limit``).
Limit = Callable[[dict[str, Any], Drug | None], dict[str, Any]]


class RuleConfig(StrictValues):
    """A rule's switch and thresholds; each rule extends it with the thresholds of the clinical specification (§2).
    Each is taken only as what it is (a file's ``max_days = "14"`` or ``enabled = 0`` is refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # Days this rule stays quiet for a patient after its warning or info card is overridden;
    # unset: CDS_SNOOZE_DAYS. 0: never snoozed.
    snooze_days: int | None = Field(default=None, ge=0, le=3650)

    def history_days(self) -> int:
        """How many days back this rule reads finished courses (0: only running ones). A history
        order whose drug cannot be known is said (the history read in part) when written within
        the furthest of these: counted from the day written, so a long supply written before it
        that ran into a window is knowingly not said (the MAO inhibitor's 365 days cover most)."""
        return 0


# The age from which the Beers Criteria advise avoiding the skeletal muscle relaxants and the
# tricyclics ([BEERS]: "adults 65 and older").
BEERS_AGE = 65


class OlderAdultConfig(RuleConfig):
    """The thresholds of a rule that reads the patient's age: declared once, so that each such rule
    has the same bounds and the same test, and so that the pipeline knows which rules need the age
    (``Rule.reads_age``) by their class, not by the name of a field."""

    # The age from which a rule reads a patient as an older adult (Beers: 65), the same bounds for
    # each rule: 0 was accepted by two of them, and made every adult one.
    min_age: int = Field(default=BEERS_AGE, ge=18, le=120)

    def older(self, context: PatientContext) -> bool:
        """Whether the patient is an older adult; an unknown age is not (the notices say it is unknown)."""
        return context.oldest_age is not None and context.oldest_age >= self.min_age


class AdviceAgeConfig(OlderAdultConfig):
    """The age of a rule whose card fires at any age, its ``min_age`` deciding only which drugs
    the card advises: from it, none the Beers Criteria say to avoid. A site may withhold them
    earlier, never later: at 70 a 67-year-old was advised amitriptyline, or cyclobenzaprine (an
    informaticist's audit)."""

    min_age: int = Field(default=BEERS_AGE, ge=18, le=BEERS_AGE)


# The card fact holding why a suggestion was left out, said after the card's detail: set by the
# pipeline (``facts.orders.no_change_reason``) or by a rule whose update cannot be written (``NoChange``).
NO_CHANGE = "no_change"


class NoChange(Exception):
    """An update that cannot be written so that it is right (``rules.duration_update``): no
    suggestion carrying it is offered, and the card says ``reason``, a sentence, why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Proposal:
    """A suggestion before it has words: its FHIR actions, and whether it is the one we recommend."""

    actions: tuple[dict[str, Any], ...]
    recommended: bool = False
    # Which of the variant's suggestion labels names it ("suggestion", or a key of its
    # ``suggestions`` table): a card with two choices words each its own way.
    label: str = "suggestion"
    # A dose change (the 5 mg or 2.8 mg swap). The pipeline applies the other findings' limits
    # for the same order to it (``Finding.limit``), so accepting it alone leaves a safe order.
    dose_change: bool = False
    # What limits composed into it add to its label, each shown in parentheses ("limited to 21
    # days"); set by the pipeline, not by rules.
    notes: tuple[str, ...] = ()
    # The product a dose change swaps to (the 5 mg tablet), whose tablets its count is in: the
    # draft's mass is capped in them, composed limits and all (None: the draft's drug).
    product: Drug | None = None


@dataclass(frozen=True)
class Finding:
    """A rule firing for one order: which card variant, with which facts and suggestions."""

    rule_id: str
    variant: str
    order: Order
    facts: dict[str, str] = field(default_factory=dict)
    proposals: tuple[Proposal, ...] = ()
    # This finding's limit as a change to any update of the same order (the duration limit):
    # composed into the dose changes other rules propose (clinical specification §2).
    limit: Limit | None = None
    # What the composed limit adds to a dose change's label, e.g. "limited to 21 days".
    limit_note: str = ""
    # The evidence keys this card cites, when only some of its file's apply (e.g. the opioid
    # boxed warning only when an opioid or benzodiazepine is named); None: all of them.
    evidence: tuple[str, ...] | None = None
    # The summaries of the cards for this order that this critical card silenced (card volume):
    # set by the pipeline, shown as one "Also flagged" line, so an override keeps what they said.
    also_flagged: tuple[str, ...] = ()
    # History orders with no start date that this card names, asking when last taken: the
    # partial-history notice leaves them to it when the card is shown (``pipeline.evaluate``).
    names_undated: frozenset[str] = frozenset()
    # What the card names besides the ordered drug, as stable identities: the other drugs'
    # ingredients, the conditions' codes ("system|code"). A "don't show again" then silences
    # this rule's card only while a new card's subject is within what the snoozed card named: a
    # snooze said of gabapentin must not hide the oxycodone ordered next (a clinical safety
    # review). None: the card names nothing else, and a snooze silences the whole rule.
    # Drug and condition codes only, never a patient's identifiers: stored with the card record.
    subject: frozenset[str] | None = None

    @property
    def deletes_order(self) -> bool:
        return any(
            action["type"] == "delete" and action.get("resourceId") == self.order.reference
            for proposal in self.proposals
            for action in proposal.actions
        )


# A rule's configuration class: its ``evaluate`` takes that class's thresholds, and mypy holds
# the two to each other where the rule is declared.
ConfigT = TypeVar("ConfigT", bound=RuleConfig)


@dataclass(frozen=True)
class Rule(Generic[ConfigT]):
    id: str
    # The card variants (keys in cards/<id>.toml) the rule can produce, each with the facts it
    # fills for that variant: all its text may name in {braces}. Both checked at start-up.
    variants: Mapping[str, tuple[str, ...]]
    # Cheap check on an order alone: if no order passes any rule's, the call has nothing to evaluate.
    applies_to: Callable[[Order, Terminology], bool]
    evaluate: Callable[[PatientContext, Order, Terminology, ConfigT], Finding | None]
    # Its switch and thresholds (``RuleConfig`` itself where it has no thresholds of its own).
    config: type[ConfigT]
    # Rules about the patient rather than the order give one card per call, not one per order.
    once_per_call: bool = False
    hooks: frozenset[str] = HOOKS
    # Rules whose cards this rule's card makes redundant for the call (clinical specification §2,
    # card volume): the red-flag card subsumes the MRI and heat-and-exercise cards.
    subsumes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        """A misspelt hook ("order-selct") would load and the rule never run: refused at import."""
        if unknown := sorted(self.hooks - HOOKS):
            raise ValueError(f"rule {self.id}: no service is declared for hook {', '.join(unknown)}")

    @property
    def reads_age(self) -> bool:
        """Whether its card depends on the patient's age: if none of a call's rules does, an
        unknown age is not said (a TENS order was told "the checks for older adults did not run")."""
        return issubclass(self.config, OlderAdultConfig)


# Every rule's module (``rules/<rule_id>.py``, defining ``RULE``), in the order their cards are
# listed within one indicator: adding a rule is one line here.
RULE_MODULES = (
    "cyclobenzaprine_maoi",
    "tizanidine_cyp1a2_inhibitor",
    "cyclobenzaprine_contraindicated_condition",
    "cyclobenzaprine_hepatic_impairment",
    "cyclobenzaprine_older_adult",
    "muscle_relaxant_older_adult",
    "cyclobenzaprine_serotonergic",
    "muscle_relaxant_cns_depressant",
    "cyclobenzaprine_anticholinergic_caution",
    "cyclobenzaprine_duration",
    "muscle_relaxant_duplicate",
    "back_pain_red_flag",
    "muscle_relaxant_chronic_pain",
    "refractory_spasm_imaging",
    "muscle_relaxant_class_switch",
    "nonpharmacologic_first_line",
    "low_value_back_therapy",
)


def all_rules() -> tuple[Rule, ...]:
    """Every rule, in the order their cards are listed within one indicator. Imported when asked
    for: each module imports this one for ``Rule``."""
    rules: tuple[Rule, ...] = tuple(import_module(f"{__name__}.{name}").RULE for name in RULE_MODULES)
    return rules
