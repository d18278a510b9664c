"""The rules' part of the settings: each rule's switch, thresholds and ``snooze_days`` under
``rules``, keyed by rule id, and what a rule's own snooze comes to.

Apart from ``settings`` (whose fields, in their order, are the documentation's table) because it is
the one part made from the rules themselves, not written out: a rule added brings its own config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from cds_service.rules import RuleConfig, all_rules
from cds_service.settings_file import field_name, set_where

# Thresholds two rules must hold alike: (a rule, its key, the rule whose value of it rules). When a
# vertebral fracture is current decides when the red-flag card speaks of it and when the
# low-value card, silent beside a red flag, keeps quiet: set apart, a TENS order for a 60-day-old
# fracture got both cards, or neither (an informaticist's audit).
_IN_STEP = (("low-value-back-therapy", "current_fracture_days", "back-pain-red-flag"),)

# One field per rule, named by its id, holding that rule's switch and thresholds.
RulesConfig = create_model(  # type: ignore[call-overload]
    "RulesConfig",
    __config__=ConfigDict(extra="forbid", frozen=True),
    **{field_name(rule.id): (rule.config, Field(default_factory=rule.config)) for rule in all_rules()},
)


class RuleSettings(BaseModel):
    """What ``Settings`` answers of a rule. No fields of its own: a field here would come first in
    the settings' table, where ``rules`` is last; those it reads are the settings' own."""

    if TYPE_CHECKING:
        snooze_days: int
        retention_days: int
        rules: Any

    @model_validator(mode="after")
    def _snooze_within_retention(self) -> Self:
        """A snooze rests on stored feedback: the feedback must outlive the snooze."""
        for rule in all_rules():
            days = self.snooze_days_for(rule.id)
            if days > self.retention_days:
                where = "snooze_days" if days == self.snooze_days else f"rules.{rule.id}.snooze_days"
                raise ValueError(f"{where} is {days}, longer than retention_days ({self.retention_days})")
        return self

    @model_validator(mode="after")
    def _in_step(self) -> Self:
        """A threshold two rules read as one is refused set apart, both named, and where each was set
        (one left at its default is not): neither is the other's default, so a site that moves one is
        told to move the other. With either rule off they cannot disagree, and are not refused."""
        for rule_id, key, leader in _IN_STEP:
            configs = {rule_id: self.rule_config(rule_id), leader: self.rule_config(leader)}
            own, led = (getattr(config, key) for config in configs.values())
            if own != led and all(config.enabled for config in configs.values()):
                set_ = [f"rules.{field_name(id_)}.{key}" for id_, c in configs.items() if key in c.model_fields_set]
                raise ValueError(
                    f"rules.{rule_id}.{key} is {own} and rules.{leader}.{key} {led}: the two rules read"
                    f" it as one, set both to the same value{set_where(set_)}"
                )
        return self

    def rule_config(self, rule_id: str) -> RuleConfig:
        return getattr(self.rules, field_name(rule_id))

    def snooze_days_for(self, rule_id: str) -> int:
        own = self.rule_config(rule_id).snooze_days
        return self.snooze_days if own is None else own
