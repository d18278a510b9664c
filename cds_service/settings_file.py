"""The TOML file ``CDS_CONFIG_FILE`` names: settings under the environment, with rule ids
written as a site writes them (``[rules.cyclobenzaprine-duration]``)."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, InitSettingsSource, SettingsError

# Read before the settings themselves (it names their file), so it is not a field.
CONFIG_FILE_DESCRIPTION = (
    "A TOML file with any of these settings (names without the prefix, lower case) and the rules' "
    "switches and thresholds; the environment wins over it. See `config.example.toml`."
)


def field_name(rule_id: str) -> str:
    return rule_id.replace("-", "_")


class ConfigFile(InitSettingsSource):
    """The file's settings, as pydantic-settings' TOML source gives them but stricter: a key in our
    own file that is no setting is a typo. Read as UTF-8 whatever the machine's encoding, a
    byte-order mark (some Windows editors') dropped, as the content files are: the TOML source
    refused it as "Invalid statement (at line 1, column 1)"."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls, tomllib.loads(path.read_text(encoding="utf-8-sig")))

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        # Unknown environment variables are someone else's; a key in our own file is a typo.
        unknown = sorted(set(data) - set(self.settings_cls.model_fields))
        if unknown:
            raise SettingsError(f"CDS_CONFIG_FILE: not settings: {', '.join(unknown)}")
        rules = data.get("rules")
        if isinstance(rules, dict):
            names = [field_name(str(key)) for key in rules]
            data["rules"] = dict(zip(names, rules.values(), strict=True))
            twice = sorted(str(key) for key, name in zip(rules, names, strict=True) if names.count(name) > 1)
            if twice:  # [rules.a-b] and [rules.a_b]: the later table replaced the other without a word
                raise SettingsError(f"CDS_CONFIG_FILE: one rule's table written twice: rules.{', rules.'.join(twice)}")
        return data


def config_file(settings_cls: type[BaseSettings]) -> ConfigFile | None:
    """None when no file is named; a file named but missing stops the start (a typo, not a choice)."""
    path = os.environ.get("CDS_CONFIG_FILE")
    if not path:
        return None
    if not Path(path).is_file():
        raise FileNotFoundError(f"CDS_CONFIG_FILE: no file at {path}")
    return ConfigFile(settings_cls, Path(path))


def set_where(fields: list[str]) -> str:
    """Where the refused settings were set, for the error that names them: the variable when the
    environment has it (it wins), else the file. A threshold refused in ``rules`` did not say, and
    a site keeping both looked in the wrong one (an informaticist's review). A field that may be
    its default (one of two set apart) is passed only when set (``model_fields_set``)."""
    file = os.environ.get("CDS_CONFIG_FILE")
    where = []
    for field in fields:
        variable = _variable_setting(field)
        if variable:
            where.append(f"set by {variable}")
        elif file and field != "body":  # "body": the settings as a whole (a snooze past retention)
            where.append(f"set in CDS_CONFIG_FILE ({file})")
    return f" ({'; '.join(dict.fromkeys(where))})" if where else ""


def _variable_setting(field: str) -> str | None:
    """The variable that set ``field`` (``rules.x.max_days``): its own, or one of JSON holding it
    (``CDS_RULES__X='{"max_days": 14}'``). One set empty is unset, as the settings read it."""
    named = {name.upper(): (name, value) for name, value in os.environ.items() if value}
    keys = field.split(".")
    for depth in range(len(keys), 0, -1):
        name, value = named.get("CDS_" + "__".join(keys[:depth]).upper(), ("", ""))
        if name and depth == len(keys):
            return name
        try:
            held = json.loads(value) if name else None
        except ValueError:
            continue
        for key in keys[depth:]:
            held = held.get(key) if isinstance(held, dict) else None
        if held is not None:
            return name
    return None
