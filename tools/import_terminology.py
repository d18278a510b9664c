"""Rebuild the shipped terminology tables from their upstream sources.

Run by a maintainer when the sources change, never by the service: the service and the
tests read only the generated files under ``cards/terminology/``, which carry their
provenance in their headers.

    python tools/import_terminology.py ../shared

It copies the NLM VSAC value set expansions unchanged (they name their OID, version and
expansion date) and turns the RxNorm product list into a table with the ingredient, the
strength in mg and the release form read off each product name, so a clinician can audit
every row instead of trusting a parser at run time.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "cards" / "terminology"

# "Cyclobenzaprine hydrochloride 10 MG" → the number right after the ingredient's part.
_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*MG(?!/)", re.IGNORECASE)
_FORMS = ("tablet", "capsule", "solution", "suspension", "injection", "patch", "cream", "gel")


def _product_row(rxcui: str, kind: str, ingredient: str, name: str) -> dict[str, str]:
    lowered = name.lower()
    # The relevant ingredient is named first or after a "/" in combination products.
    part = next((p for p in name.split(" / ") if ingredient in p.lower()), name)
    strength = _STRENGTH.search(part)
    solid = any(form in lowered for form in ("tablet", "capsule")) or kind == "component"
    form = next((f for f in _FORMS if f in lowered), "")
    return {
        "rxcui": rxcui,
        "kind": kind,
        "ingredient": ingredient,
        "strength_mg": strength.group(1) if strength and solid else "",
        # A component (SCDC) names no dose form, so its release form is unknown.
        "release": "" if kind == "component" else ("extended" if "extended release" in lowered else "immediate"),
        "dose_form": form,
        "name": name,
    }


def main(shared: Path) -> None:
    source = shared / "terminology" / "rxnorm-relevant-products.tsv"
    with source.open(newline="") as handle:
        rows = [
            _product_row(r["rxcui"], r["kind"], r["ingredients"], r["name"])
            for r in csv.DictReader(handle, delimiter="\t")
        ]
    target = OUT / "rxnorm-products.tsv"
    with target.open("w", newline="") as handle:
        handle.write(
            "# RxNorm products relevant to the rules: rxcui, RxNorm kind, the relevant ingredient,\n"
            "# strength of that ingredient in mg (solid forms only), release form and the RxNorm name.\n"
            "# Source: the RxNorm subset bundled with the CDS Hooks sandbox\n"
            "# (shared/terminology/rxnorm-relevant-products.tsv); strength and release are read off\n"
            "# the RxNorm names by tools/import_terminology.py.\n"
        )
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{target.relative_to(ROOT)}: {len(rows)} products")

    for path in sorted((shared / "valuesets").glob("valueset-*.json")):
        oid = json.loads(path.read_text())["id"]
        shutil.copyfile(path, OUT / "valuesets" / f"{oid}.json")
        print(f"cards/terminology/valuesets/{oid}.json")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared"))
