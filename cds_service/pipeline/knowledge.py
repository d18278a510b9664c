"""Everything evaluation reads that is loaded once at start-up: terminology, card text, rules
and their configuration, cross-checked so that any gap stops start-up, not a hook call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from functools import cached_property

from cds_service.content import content_dir, site_terminology
from cds_service.content.cards import CardCatalog, load_catalog
from cds_service.content.terminology import Terminology, load_terminology, require_concepts
from cds_service.errors import UnknownService, shown
from cds_service.protocol.services import SERVICES, ServiceDefinition, service_for
from cds_service.rules import Rule, RuleConfig, all_rules
from cds_service.settings import Settings


@dataclass(frozen=True)
class Knowledge:
    """Everything loaded once at start-up that evaluation reads."""

    terminology: Terminology
    catalog: CardCatalog
    # Every rule with its configuration; only the enabled ones are evaluated.
    all_rules: tuple[Rule, ...]
    configs: dict[str, RuleConfig]
    # Days a rule stays quiet for a patient after its warning or info card is overridden (0: never).
    snooze_days: dict[str, int]
    # Where the site's days begin and end (CDS_TIMEZONE): the zone "today" is read in.
    zone: tzinfo

    @cached_property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.all_rules if self.configs[rule.id].enabled)

    @cached_property
    def history_days(self) -> int:
        """How far back the enabled rules read finished courses (``RuleConfig.history_days``)."""
        return max((self.configs[rule.id].history_days() for rule in self.rules), default=0)

    def rules_for(self, hook: str) -> tuple[Rule, ...]:
        return self._rules_by_hook.get(hook, ())

    @cached_property
    def _rules_by_hook(self) -> dict[str, tuple[Rule, ...]]:
        """Worked out once: every hook call asks (the configuration is fixed at start-up)."""
        hooks = {hook for rule in self.rules for hook in rule.hooks}
        return {hook: tuple(rule for rule in self.rules if hook in rule.hooks) for hook in hooks}

    @cached_property
    def offered_services(self) -> tuple[ServiceDefinition, ...]:
        """The services this site offers, by id: those with an enabled rule for their hook. One
        with none is no service at all, not one that answers "no advice": discovery leaves it
        out, and a call to it (the route's or ``cds-service evaluate``'s) is refused
        (``offered_service``), so that no EHR that cached it reads an empty answer as all clear."""
        return tuple(SERVICES[key] for key in sorted(SERVICES) if self.rules_for(SERVICES[key].hook))

    def offered_service(self, service_id: str) -> ServiceDefinition:
        """The service called, or ``UnknownService``: an id not declared, or a service this site
        does not offer (``offered_services``), which the message names."""
        service = service_for(service_id)
        if service not in self.offered_services:
            raise UnknownService(
                f"no CDS service with id {shown(service.id)}: every check it runs is switched off here"
            )
        return service


def load_knowledge(settings: Settings) -> Knowledge:
    """Terminology, card text, rules and their configuration, cross-checked: any gap stops start-up."""
    content, shipped = content_dir(settings.cards_dir), content_dir()
    catalog = load_catalog(content, shipped if settings.cards_dir is not None else None)
    rules = all_rules()
    for rule in rules:
        catalog.require(rule.id, rule.variants)
    own_terminology = site_terminology(settings.cards_dir)
    if own_terminology is None:
        terminology = load_terminology(shipped / "terminology", settings.local_codes_file)
    else:
        terminology = load_terminology(own_terminology, settings.local_codes_file, shipped / "terminology")
        require_concepts(terminology, own_terminology, shipped / "terminology")
    return Knowledge(
        terminology=terminology,
        catalog=catalog,
        all_rules=rules,
        configs={rule.id: settings.rule_config(rule.id) for rule in rules},
        snooze_days={rule.id: settings.snooze_days_for(rule.id) for rule in rules},
        zone=settings.zone,
    )


def cautions(knowledge: Knowledge, settings: Settings) -> list[str]:
    """Settings start-up takes that a site's clinical safety officer must have chosen knowingly,
    each said at start-up as a warning (a clinical safety review found them silent): a rule with
    critical cards switched off, each code the site's local codes take out of a shipped concept
    (a heart failure code so taken out gave no critical card), each shipped concept the site's
    own terminology folder lists less of (the same, by a copy), and the days counted in UTC
    because no zone was set (the MAO inhibitor washout's last day fell either side of midnight
    in New York)."""
    said = []
    for rule in knowledge.all_rules:
        critical = any(v.indicator == "critical" for v in knowledge.catalog.texts[rule.id].variants.values())
        if critical and not knowledge.configs[rule.id].enabled:
            said.append(f"rule {rule.id}, which can issue critical cards, is switched off: its checks do not run")
    said += [str(exclusion) for exclusion in knowledge.terminology.local_exclusions]
    said += [str(omission) for omission in knowledge.terminology.site_omissions]
    if "timezone" not in settings.model_fields_set:
        said.append(
            "CDS_TIMEZONE is not set: the rules count days (washouts, courses, onsets) in UTC; "
            "set the site's zone, e.g. America/New_York (docs/configuration.md)"
        )
    return said
