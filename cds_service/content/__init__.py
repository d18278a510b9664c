"""The clinical content: card text, evidence, override reasons and terminology tables.

The shipped content is the top-level ``cards/`` folder (one source, reviewed as data), which
the package carries as package data (``cds_service/content/shipped`` links to it), so an
installed service finds it without a source tree; a site points ``CDS_CARDS_DIR`` at a folder
of the files it rewords, each read over the shipped file of its name.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path


def content_dir(override: Path | None = None) -> Traversable:
    """The site's content directory when configured, else the content shipped in the package:
    in a source tree, the ``cards/`` its link leads to, so that an error names the file to edit."""
    if override is not None:
        return override
    shipped = files(__name__) / "shipped"
    return shipped.resolve() if isinstance(shipped, Path) else shipped


def site_terminology(cards_dir: Path | None) -> Path | None:
    """The site's own ``terminology/``, when its content folder has one: its code lists replace
    the shipped ones whole (they hang together), where its card files each replace one."""
    folder = cards_dir / "terminology" if cards_dir is not None else None
    return folder if folder is not None and folder.is_dir() else None
