"""An order's reason read from its FHIR (R4) JSON into ``facts.model.Reason``."""

from __future__ import annotations

from typing import Any

from cds_service.facts.model import Reason
from cds_service.fhir.coding import on_one_line
from cds_service.fhir.json import as_list, as_obj, as_str, codes_of


def reason_of(facts: dict[str, Any]) -> Reason:
    """``reasonCode`` and ``reasonReference`` (R4's Condition links) of an order read as R4."""
    coded, referred = as_list(facts.get("reasonCode")), as_list(facts.get("reasonReference"))
    codes = on_one_line(codes_of(facts.get("reasonCode")))
    in_words = any(as_obj(reason).get("text") for reason in coded)
    references = tuple(ref for r in referred if (ref := as_str(as_obj(r).get("reference"))))
    return Reason(codes=codes, given=bool(codes) or in_words or bool(referred), references=references)
