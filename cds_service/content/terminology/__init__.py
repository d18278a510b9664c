"""Code tables from ``cards/terminology/``, loaded and indexed once at start-up.

Rules ask clinical questions ("is this condition moderate-to-severe liver disease?", "which
ingredient is this product?"); this package answers them with a set or dict lookup. The codes
themselves live in data files that name their sources, so a clinician can audit them without
reading Python; a site adds its own codes in a local codes file (``CDS_LOCAL_CODES_FILE``).

By job: ``model`` (what the answers are), ``names`` (reading a medication off its name),
``lookup`` (the questions), ``loading`` (the files, cross-checked at start-up), ``local`` (a
site's own codes).
"""

from __future__ import annotations

from cds_service.content.terminology.loading import load_terminology, require_concepts
from cds_service.content.terminology.lookup import Terminology
from cds_service.content.terminology.model import CodeConcept, Drug, TerminologyError

__all__ = ["CodeConcept", "Drug", "Terminology", "TerminologyError", "load_terminology", "require_concepts"]
