"""The settings as docs/configuration.md shows them: rendered from the fields' descriptions, so the
documentation cannot drift from the code (``python -m cds_service.settings_table`` prints it)."""

from __future__ import annotations

import json
from pathlib import Path

from cds_service.settings import ENV_PREFIX, Settings
from cds_service.settings_file import CONFIG_FILE_DESCRIPTION


def _default(value: object) -> str:
    """A default as it would be written in the environment, the same on every machine."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        root = Path(__file__).resolve().parent.parent
        return f"`./{value.relative_to(root).as_posix()}`" if value.is_relative_to(root) else f"`{value.as_posix()}`"
    if isinstance(value, list):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def settings_table() -> str:
    """The settings as a Markdown table (variable, default, description), from the fields' descriptions.

    docs/configuration.md holds it between ``<!-- settings:start -->`` and ``<!-- settings:end -->``;
    ``python -m cds_service.settings_table`` prints it."""
    rows = ["| variable | default | description |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        if name == "rules":
            variable = f"`{ENV_PREFIX}RULES__<RULE_ID>__<KEY>`"
            default = "see `cds-service rules`"
            description += " See [Rule switches and thresholds](#rule-switches-and-thresholds)."
        else:
            variable = f"`{ENV_PREFIX}{name.upper()}`"
            default = _default(field.get_default(call_default_factory=True))
        rows.append(f"| {variable} | {default} | {description} |")
    rows.append(f"| `{ENV_PREFIX}CONFIG_FILE` | unset | {CONFIG_FILE_DESCRIPTION} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
