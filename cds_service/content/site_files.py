"""A site's card folder (``CDS_CARDS_DIR``) over the shipped content: which files are read, and
what a site's card file may not change of the shipped one.

The folder is for wording (docs/configuration.md, Card text). A variant's indicator is the
clinical specification's severity, which decides whether a card may be snoozed or repeated, and
its one-click choices are the rule's: a site file that changed either (a critical card made
"info", offered "don't show again"; a "Remove" button gone with its ``suggestion`` line) stops
start-up with the file and variant named. A site quiets a rule in its settings instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources.abc import Traversable
from typing import Any

from cds_service.content.reading import CardContentError, read_toml
from cds_service.fhir.json import as_obj


def content_files(directory: Traversable, shipped: Traversable | None) -> dict[str, Traversable]:
    """The files read, by name: a site's own over the shipped ones. One of a name not shipped
    (misspelt, in capitals) stops start-up: its words were never shown, without a word."""
    try:
        own = {path.name: path for path in directory.iterdir()}
        under = {path.name: path for path in shipped.iterdir()} if shipped is not None else {}
    except OSError as error:  # not there, not a directory, or one its reader may enter but not list
        raise CardContentError(f"{directory}: cannot list it: {error.strerror or error}") from None
    for name, path in own.items() if shipped is not None else ():
        if _foreign(name, path, under):
            raise CardContentError(f"{path}: no file or folder of the content has this name (see `cards/`)")
    return {name: path for name, path in (under | own).items() if path.is_file()}


def _foreign(name: str, path: Traversable, shipped: dict[str, Traversable]) -> bool:
    """Not the content's: ``terminology`` not a folder, another folder, a TOML file not shipped."""
    if name == "terminology":
        return not path.is_dir()
    return (name.endswith(".toml") or path.is_dir()) and name not in shipped


def _choices(variant: Mapping[str, Any]) -> frozenset[str]:
    """The one-click choices a variant's text offers, by ``Proposal.label``: its ``suggestion``
    and the keys of its ``suggestions`` table (a rule's proposal without a label is not shown)."""
    return frozenset(as_obj(variant.get("suggestions"))) | ({"suggestion"} if variant.get("suggestion") else set())


def keep_shipped_terms(where: str, data: dict[str, Any], shipped: Traversable | None) -> None:
    """A site's card file (``data``, read from ``where``) keeps each variant's indicator and
    choices as ``shipped`` has them; its words are its own. A variant only one of them has is
    left to ``CardCatalog.require``, which names it."""
    if shipped is None:
        return
    theirs = as_obj(read_toml(shipped).get("variants"))
    for name, raw in as_obj(data.get("variants")).items():
        own, ships = as_obj(raw), as_obj(theirs.get(name))
        if not ships:
            continue
        if own.get("indicator") != ships.get("indicator"):
            raise CardContentError(
                f'{where}: variants.{name}.indicator is "{own.get("indicator")}", the shipped card\'s '
                f'"{ships.get("indicator")}": a site\'s card file rewords a card, its severity is the '
                "clinical specification's (a rule is switched off or its thresholds moved in the settings)"
            )
        if (offered := sorted(_choices(own))) != (shipped_offers := sorted(_choices(ships))):
            raise CardContentError(
                f"{where}: variants.{name} offers the choices {offered}, the shipped card {shipped_offers} "
                "(its `suggestion`, the keys of its `suggestions`): a site's card file rewords their labels, "
                "the choices are the rule's"
            )
