"""Rebuild the shipped terminology tables from their upstream sources.

Run by a maintainer when the sources change, never by the service: the service and the
tests read only the generated files under ``cards/terminology/``, which carry their
provenance in their headers.

    .venv/bin/python tools/import_terminology.py ../shared --sandbox /path/to/cds-hooks/sandbox [--commit SHA]

``--sandbox`` is a clone (or bare mirror) of github.com/cds-hooks/sandbox, read at ``--commit``
(default HEAD), or its ``src/assets/medication-list.js`` file itself.

It copies the NLM VSAC value set expansions unchanged (they name their OID, version and
expansion date) and turns the RxNorm product lists into one table with the relevant
ingredients, the strength in mg, the release form and the route read off each product name,
so a clinician can audit every row instead of trusting a parser at run time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

# The service reads free text with the same words, so a product's route and release form mean
# the same whether it was found by its code or by its name.
from cds_service.content.terminology.names import release_named, route_named

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "cards" / "terminology"
MEDICATION_LIST = "src/assets/medication-list.js"

# The ingredients of clinical-rules.md §4 whose products are taken from the sandbox's full list
# (a product counts for an ingredient named in its name, word match, case-insensitive).
_GROUPS = {
    "skeletal muscle relaxants": "cyclobenzaprine baclofen tizanidine methocarbamol carisoprodol metaxalone "
    "orphenadrine chlorzoxazone",
    "MAO inhibitors (and methylene blue, below)": "phenelzine tranylcypromine isocarboxazid selegiline rasagiline "
    "safinamide linezolid",
    "SSRIs": "citalopram escitalopram fluoxetine fluvoxamine paroxetine sertraline",
    "SNRIs": "desvenlafaxine duloxetine levomilnacipran milnacipran venlafaxine",
    "other serotonergic antidepressants": "vilazodone vortioxetine",
    "tricyclic antidepressants": "amitriptyline nortriptyline imipramine desipramine doxepin clomipramine "
    "trimipramine protriptyline amoxapine",
    "the label's other serotonergic drugs": "tramadol bupropion meperidine verapamil",
    "opioids": "buprenorphine codeine dihydrocodeine fentanyl hydrocodone hydromorphone levorphanol methadone "
    "morphine oxycodone oxymorphone pentazocine tapentadol",
    "benzodiazepines": "alprazolam chlordiazepoxide clobazam clonazepam clorazepate diazepam estazolam "
    "flurazepam lorazepam midazolam oxazepam temazepam triazolam",
    "barbiturates": "butalbital phenobarbital",
    "Z-drugs": "eszopiclone zaleplon zolpidem",
    "gabapentinoids": "gabapentin pregabalin",
    "CYP1A2 inhibitors (with fluvoxamine)": "ciprofloxacin",
}
INGREDIENTS = [*dict.fromkeys(word for words in _GROUPS.values() for word in words.split()), "methylene blue"]

SOURCES = {
    "subset": "the RxNorm subset bundled with the CDS Hooks sandbox (shared/terminology/rxnorm-relevant-products.tsv)",
    "sandbox": "the CDS Hooks sandbox's full RxNorm list (github.com/cds-hooks/sandbox, {where})",
}
COLUMNS = (
    "rxcui",
    "kind",
    "ingredient",
    "ingredients",
    "strength_mg",
    "release",
    "route",
    "dose_form",
    "source",
    "name",
)

# "Cyclobenzaprine hydrochloride 10 MG" → the number right after the ingredient's part.
_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*MG(?!/)", re.IGNORECASE)
_FORMS = ("tablet", "capsule", "film", "solution", "suspension", "injection", "patch", "cream", "gel", "spray")


def _words(names: list[str]) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b", re.IGNORECASE)


def release(kind: str, name: str) -> str:
    # A component (SCDC) names no dose form, so no release form; nor may a dose form group
    # ("Cyclobenzaprine Pill" covers both).
    if kind == "component":
        return ""
    return release_named(name) or ("" if kind == "pill" else "immediate")


def product_row(rxcui: str, kind: str, name: str, named: list[str], source: str) -> dict[str, str]:
    """One product: ``named`` are the relevant ingredients its name names, in that order; the
    first of them that §4 lists is the one the strength belongs to."""
    lowered = name.lower()
    primary = next((i for i in named if i in INGREDIENTS), named[0])
    # The relevant ingredient is named first or after a "/" in combination products.
    part = next((p for p in name.split(" / ") if primary in p.lower()), name)
    strength = _STRENGTH.search(part)
    solid = any(form in lowered for form in ("tablet", "capsule")) or kind == "component"
    return {
        "rxcui": rxcui,
        "kind": kind,
        "ingredient": primary,
        "ingredients": ",".join(named),
        "strength_mg": strength.group(1) if strength and solid else "",
        "release": release(kind, name),
        "route": route_named(name) or "",
        "dose_form": next((f for f in _FORMS if f in lowered), ""),
        "source": source,
        "name": name,
    }


def parse_medication_list(text: str) -> dict[str, dict[str, object]]:
    """The sandbox's ``medication-list.js`` is one JavaScript object literal: quote its bare
    keys, turn its strings into JSON strings, drop trailing commas, and read it as JSON."""
    body = text[text.index("{") : text.rindex("}") + 1]
    tokens = re.compile(r"""'([^'\\]*)'|"([^"\\]*)"|(?<=[{,\s])(\w+)(?=:)|,(\s*[}\]])""")

    def token(m: re.Match[str]) -> str:
        if m.group(1) is not None or m.group(2) is not None:
            return json.dumps(m.group(1) if m.group(1) is not None else m.group(2))
        return f'"{m.group(3)}"' if m.group(3) is not None else m.group(4)

    return json.loads(tokens.sub(token, body))


def sandbox_products(data: dict[str, dict[str, object]]) -> dict[str, tuple[str, str]]:
    """rxcui → (kind, name). The list's own structure gives the kind: a dose form group ("pill")
    maps to component sets, and each component set to its prescribable products."""
    sets = data["componentSetsToPrescribables"]
    prescribable = {cui for cuis in sets.values() for cui in cuis}  # type: ignore[attr-defined]
    pills = set(data["pillToComponentSets"])

    def kind(cui: str) -> str:
        return "prescribable" if cui in prescribable else "pill" if cui in pills else "component"

    return {str(cui): (kind(str(cui)), str(name)) for cui, name in data["cuiToName"].items()}


def read_sandbox(where: Path, commit: str) -> tuple[str, str]:
    """The medication list's text and a description of exactly which version it is."""
    if where.is_file():
        text = where.read_text()
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return text, f"{MEDICATION_LIST}, file sha256 {digest}…" + (f", commit {commit}" if commit != "HEAD" else "")
    git = ["git", "-C", str(where)]
    resolved = subprocess.run([*git, "rev-parse", commit], check=True, capture_output=True, text=True).stdout.strip()
    text = subprocess.run([*git, "show", f"{resolved}:{MEDICATION_LIST}"], check=True, capture_output=True, text=True)
    return text.stdout, f"{MEDICATION_LIST} at commit {resolved}"


def build_products(shared: Path, sandbox_text: str) -> list[dict[str, str]]:
    with (shared / "terminology" / "rxnorm-relevant-products.tsv").open(newline="") as handle:
        subset = list(csv.DictReader(handle, delimiter="\t"))
    every = _words(sorted({*INGREDIENTS, *(r["ingredients"] for r in subset)}))

    def named(name: str) -> list[str]:
        return list(dict.fromkeys(m.group(1).lower() for m in every.finditer(name)))

    rows = [
        product_row(r["rxcui"], r["kind"], r["name"], named(r["name"]) or [r["ingredients"]], "subset") for r in subset
    ]
    known = {r["rxcui"] for r in rows}
    relevant = _words(INGREDIENTS)
    sandbox = sandbox_products(parse_medication_list(sandbox_text))
    for cui, (kind, name) in sandbox.items():
        if cui not in known and relevant.search(name):
            rows.append(product_row(cui, kind, name, named(name), "sandbox"))
    rows += _brand_pills(rows, sandbox)
    order = ("subset", "sandbox", "sandbox-brand")
    rows.sort(key=lambda r: (order.index(r["source"]), r["ingredient"], r["name"].lower(), r["rxcui"]))
    return rows


def brands(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    """Brand → its relevant ingredients, from the bracketed brand of the table's product names
    ("... Oral Capsule [Amrix]"); a brand whose products differ in ingredients is left out."""
    found: dict[str, set[str]] = {}
    for row in rows:
        brand = re.search(r"\[([^\]]+)\]$", row["name"])
        if brand:
            found.setdefault(brand.group(1), set()).add(row["ingredients"])
    return {brand: ingredients.pop().split(",") for brand, ingredients in found.items() if len(ingredients) == 1}


def _brand_pills(rows: list[dict[str, str]], sandbox: dict[str, tuple[str, str]]) -> list[dict[str, str]]:
    """The sandbox's brand dose form groups ("Amrix Pill") name no ingredient: they count for the
    ingredients the same list's products of that brand name."""
    by_brand = brands(rows)
    known = {r["rxcui"] for r in rows}
    pills = []
    for cui, (kind, name) in sandbox.items():
        brand = name.removesuffix(" Pill")
        if kind == "pill" and cui not in known and brand in by_brand:
            row = product_row(cui, kind, name, by_brand[brand], "sandbox-brand")
            # One release form for every product of the brand (Amrix: extended) is the group's too.
            forms = {r["release"] for r in rows if r["name"].endswith(f"[{brand}]") and r["kind"] == "prescribable"}
            row["release"] = forms.pop() if len(forms) == 1 else ""
            pills.append(row)
    return pills


def write_products(rows: list[dict[str, str]], sandbox_where: str) -> Path:
    target = OUT / "rxnorm-products.tsv"
    with target.open("w", newline="") as handle:
        handle.write(
            "# RxNorm products relevant to the rules, one row per RxNorm concept (rxcui).\n"
            "# kind: prescribable (SCD/SBD), component (SCDC/SBDC: no dose form) or pill (a dose form group).\n"
            "# ingredient: the relevant ingredient the strength belongs to; ingredients: every relevant\n"
            "# ingredient the name names (a combination product counts for each of them).\n"
            "# strength_mg: of that ingredient, solid forms only; release: immediate, extended or sublingual;\n"
            "# route: as the name states it (oral, sublingual, ophthalmic, otic, injectable, ...).\n"
            "# All read off the RxNorm names by tools/import_terminology.py. source, per row:\n"
            f"#   subset  = {SOURCES['subset']}\n"
            f"#   sandbox = {SOURCES['sandbox'].format(where=sandbox_where)},\n"
            "#             products naming an ingredient of clinical-rules.md §4 (word match, case-insensitive)\n"
            '#   sandbox-brand = the same list\'s brand dose form groups ("Amrix Pill"), for the ingredients\n'
            '#             of that brand\'s products in this table ("... Extended Release Oral Capsule [Amrix]")\n'
        )
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shared", type=Path, nargs="?", default=ROOT.parent / "shared")
    parser.add_argument(
        "--sandbox", type=Path, required=True, help="cds-hooks/sandbox clone, or its medication-list.js"
    )
    parser.add_argument("--commit", default="HEAD", help="the sandbox commit to read (or that the file comes from)")
    args = parser.parse_args()
    text, where = read_sandbox(args.sandbox, args.commit)
    rows = build_products(args.shared, text)
    target = write_products(rows, where)
    print(f"{target.relative_to(ROOT)}: {len(rows)} products")

    for path in sorted((args.shared / "valuesets").glob("valueset-*.json")):
        oid = json.loads(path.read_text())["id"]
        shutil.copyfile(path, OUT / "valuesets" / f"{oid}.json")
        print(f"cards/terminology/valuesets/{oid}.json")


if __name__ == "__main__":
    main()
