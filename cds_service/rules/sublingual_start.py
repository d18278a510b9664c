"""The sublingual product at its start dose, the one-click change the older-adult and hepatic
cards offer it (``rules.common.start_dose_switch``): kept on its product (it has no code to swap
to), as the tablets the site's start dose makes (``sublingual_start_dose_mg``) once a day at
bedtime, the label's frequency. Written as one 2.8 mg tablet whatever the setting, the card had
told a site whose start dose is 5.6 mg to give half of it (a review)."""

from __future__ import annotations

import math
from typing import Any

from cds_service.facts.model import Order
from cds_service.fhir.dialect import dialect
from cds_service.fhir.json import as_list, copy_json
from cds_service.rules.actions import UCUM, writable_repeat
from cds_service.rules.product_swap import recount
from cds_service.rules.safe_update import keep_as_needed, safe_update


def start_tablets(order: Order, strength_mg: float | None, start_dose_mg: float) -> int:
    """The whole tablets of ``strength_mg`` a dose at the start dose: as many as it holds (2.8 mg:
    one; 5.6 mg: two; 4 mg: one, no tablet split), never more than the draft's own dose takes (2.8 mg
    twice a day is not made 5.6 mg at once), and one at least, as where the strength is unknown."""
    if not strength_mg:
        return 1
    most = math.floor(start_dose_mg / strength_mg + 1e-9)
    if order.dose_mg is not None:
        most = min(most, math.floor(order.dose_mg / strength_mg + 1e-9))
    return max(most, 1)


def once_daily(order: Order, tablets: int) -> dict[str, Any]:
    """The sublingual draft as ``tablets`` once a day at bedtime, its count recounted in them."""
    resource = copy_json(order.resource)
    fields = dialect(resource)
    steps = [dosage for dosage in as_list(resource.get("dosageInstruction")) if isinstance(dosage, dict)]
    for dosage in steps:
        keep_as_needed(dosage)
        fields.set_dose(dosage, {"value": tablets, "unit": "tablet", "system": UCUM, "code": "{tablet}"})
        repeat = writable_repeat(dosage)
        dosage["timing"].pop("code", None)
        for key in ("frequencyMax", "periodMax", "timeOfDay", "when", "periodUnit", "periodUnits"):
            repeat.pop(key, None)
        repeat.update({"frequency": 1, "period": 1, fields.period_unit: "d", "when": fields.when("HS")})
    # Counted as one-tablet doses, ``tablets`` of them a day: what a day of the update takes.
    recount(order, resource, "tablet", [float(tablets)] * len(steps))
    return safe_update(order, resource)
