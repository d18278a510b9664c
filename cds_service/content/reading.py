"""Reading the content's TOML files and their ``{placeholders}``: shared by the cards
(``content.cards``) and the notes a card adds to its update (``content.notes``), so that an error
in either names its file and field alike."""

from __future__ import annotations

import string
import tomllib
from importlib.resources.abc import Traversable
from typing import Any


class CardContentError(ValueError):
    """Card content is missing or inconsistent; the message names the file and field."""


def placeholders(template: str, where: str) -> set[str]:
    """The facts a template names: plain ``{name}`` only, so that whatever is written renders
    (an attribute, an index, a conversion or a format spec could fail at a hook call)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:  # a brace left open or unmatched
        raise CardContentError(f"{where}: {error} (write a literal brace as {{{{ or }}}})") from error
    for _, name, spec, conversion in parsed:
        if name is not None and (not name.isidentifier() or spec or conversion):
            raise CardContentError(
                f"{where}: {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} "
                "is not a plain placeholder such as {planned_days}"
            )
    return {name for _, name, _, _ in parsed if name}


def read_toml(path: Traversable) -> dict[str, Any]:
    """A TOML file of the content, read as UTF-8 whatever the machine's encoding (a byte-order mark,
    which some Windows editors write, dropped); else why not, naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CardContentError(f"{path}: {error}") from error
