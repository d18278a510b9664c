"""The evidence the cards cite (``cards/evidence.toml``, or a site's own): each entry a label, a
citation and, if the source has one, the URL a card links to.

Each entry is checked at start-up, naming the file and entry: a misspelt ``ulr`` dropped the
link without a word, and a card sent out any link it was given (``javascript:…`` included),
where an EHR shows it to clinicians as a link to follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources.abc import Traversable
from urllib.parse import urlsplit

from cds_service.content.reading import CardContentError, read_toml

_ENTRY_KEYS = ("label", "citation", "url")


@dataclass(frozen=True)
class Evidence:
    key: str
    label: str
    citation: str
    url: str | None


def load_evidence(path: Traversable) -> dict[str, Evidence]:
    evidence = {}
    for key, entry in read_toml(path).items():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(f), str) for f in ("label", "citation")):
            raise CardContentError(f"{path}: every entry needs a label and a citation ([{key}] lacks one)")
        stray = sorted(set(entry) - set(_ENTRY_KEYS))
        if stray:
            raise CardContentError(f"{path}: [{key}] has unknown keys {stray}, not one of {_ENTRY_KEYS}")
        url = entry.get("url")
        if url is not None and not _web_link(url):
            raise CardContentError(f"{path}: [{key}].url {url!r} is not an absolute http:// or https:// URL")
        evidence[key] = Evidence(key, entry["label"], entry["citation"], url)
    return evidence


def _web_link(url: object) -> bool:
    """An absolute http(s) URL with a host, and nothing an EHR could read otherwise (spaces,
    control characters)."""
    if not isinstance(url, str) or any(ch.isspace() or not ch.isprintable() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an IPv6 host left unclosed ("http://[::1")
        return False
