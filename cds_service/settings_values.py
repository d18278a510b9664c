"""How a setting's number or switch is read, the environment's and the file's alike.

The environment gives text, read here by one grammar (``from_environment``): a whole number in
digits alone (a sign allowed), a number as ``2.8``, a switch as ``true``/``false`` (or ``1``/``0``,
``yes``/``no``, ``on``/``off``, ``t``/``f``, ``y``/``n``, any case), surrounding whitespace dropped
(a Kubernetes ``|`` block's newline). pydantic's own reading took ``14_0`` as 140 (Python's
``int``) and ``14.0`` as 14 (an informaticist's review). A TOML file says its types:
``max_days = "14"``, ``enabled = "no"`` and ``enabled = 0`` were coerced, and are refused
(``StrictValues``), as is what the environment gave that the grammar did not read. JSON in a
variable (``CDS_RULES__CYCLOBENZAPRINE_DURATION={"max_days": 14}``) says its types as the file
does: its strings (``JsonText``) are not read by the grammar.
"""

from __future__ import annotations

import math
import re
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource

_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# The words pydantic read a switch by: kept, none is ambiguous.
_SWITCH = {"true": True, "1": True, "yes": True, "on": True, "t": True, "y": True}
_SWITCH |= {"false": False, "0": False, "no": False, "off": False, "f": False, "n": False}


def scalar(annotation: Any) -> type | None:
    """``bool``, ``int`` or ``float`` for a field of one of them (or of one or None), else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = [arg for arg in get_args(annotation) if arg is not type(None)]
        annotation = kinds[0] if len(kinds) == 1 else None
    return annotation if annotation in (bool, int, float) else None


class JsonText(str):
    """A string of JSON the environment held: typed by JSON as the file's by TOML, so ``"14"`` is
    no number, where the grammar would have read it as one (a review)."""


def _marked(decoded: Any) -> Any:
    """``decoded`` with its strings, at any depth, ``JsonText`` (pydantic takes them as ``str``)."""
    if isinstance(decoded, str):
        return JsonText(decoded)
    if isinstance(decoded, dict):
        return {key: _marked(value) for key, value in decoded.items()}
    return [_marked(value) for value in decoded] if isinstance(decoded, list) else decoded


def _parsed(text: str, kind: type) -> object:
    """The value ``text`` writes, or ``text`` itself when it writes none (refused by ``StrictValues``)."""
    if kind is bool:
        return _SWITCH.get(text.lower(), text)
    if kind is int:
        return int(text) if _WHOLE.fullmatch(text) else text
    return float(text) if _DECIMAL.fullmatch(text) else text


def from_environment(data: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """The environment's settings with their numbers and switches read, nested models (``rules``) too."""
    read = {}
    for key, value in data.items():
        field = model.model_fields.get(key)
        annotation = field.annotation if field else None
        if isinstance(value, str) and not isinstance(value, JsonText) and (kind := scalar(annotation)):
            parsed = _parsed(value.strip(), kind)
            value = value if isinstance(parsed, str) else parsed
        elif isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            value = from_environment(value, annotation)
        read[key] = value
    return read


class Environment(EnvSettingsSource):
    """The ``CDS_`` variables (pydantic-settings' reading of names, nesting and JSON lists), their
    numbers and switches read by ``from_environment``, JSON's strings marked ``JsonText``."""

    def __call__(self) -> dict[str, Any]:
        return from_environment(super().__call__(), self.settings_cls)

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        decoded = super().decode_complex_value(field_name, field, value)
        return decoded if decoded is value else _marked(decoded)  # the same: a field not decoded (NoDecode)


def refusal(value: object, kind: type) -> str | None:
    """Why ``value`` is no ``kind`` as given (None: it is one). Text reaching here is the file's
    (quoted), the environment's JSON's, or what the environment's grammar did not read: each is
    told its own fault."""
    needed = {bool: "true or false", int: "a whole number", float: "a number"}[kind] + " is needed here"
    if isinstance(value, JsonText):
        return f"{needed}, not a string (no quotes in the JSON)"
    if isinstance(value, str):
        if _parsed(value, kind) is not value:
            return f"{needed}, not a string (no quotes in the file)"
        return needed + {bool: "", int: ", in digits alone", float: ", in digits (5 or 2.8)"}[kind]
    if kind is bool:
        return None if isinstance(value, bool) else f"{needed}, not a number"
    if isinstance(value, bool):  # a TOML true is not 1: max_days = true would have limited courses to one day
        return "a number is needed here, not true or false"
    if kind is int and isinstance(value, float):
        return f"{needed}, not a decimal"
    if isinstance(value, float) and math.isnan(value):  # no bound refuses it in words that fit
        return f"{needed}, not nan"
    return None


class StrictValues(BaseModel):
    """A model whose numbers and switches are taken only as what they are (``refusal``)."""

    @field_validator("*", mode="before")
    @classmethod
    def _as_declared(cls, value: Any, info: ValidationInfo) -> Any:
        kind = scalar(cls.model_fields[info.field_name].annotation) if info.field_name else None
        if kind and value is not None and (why := refusal(value, kind)):
            raise ValueError(why)
        return value
