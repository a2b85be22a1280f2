#!/usr/bin/env python3
"""Builds data/vocabulary.json: the hand-curated concepts in data/synonyms.json merged with one
generated concept per distinct code that occurs in the Synthea FHIR bundles.

For every bundle under <data>/synthea/*.json and <data>/synthea-java/*.json it collects the
(resourceType, system, code, display) of each coding in the main concept element of:
  Observation.code, Observation.component.code, Condition.code, Procedure.code,
  MedicationRequest/MedicationAdministration.medicationCodeableConcept, Immunization.vaccineCode,
  AllergyIntolerance.code, DiagnosticReport.code, CarePlan.category, CarePlan.activity.detail.code,
  Device.type, ImagingStudy.procedureCode, ImagingStudy.series.bodySite/modality, Encounter.type,
  DocumentReference.type
and counts occurrences. Each distinct (system, code) becomes a concept whose terms are cleaned
variants of its display (lower-cased, SNOMED semantic tag removed, LOINC lab names shortened to the
analyte, RxNorm products reduced to their ingredients and bracketed brand). A generated concept
whose code is listed by a curated concept is folded into that curated concept instead.

Run from the repo root: python3 tools/build_vocabulary.py [--data ../shared/data]
"""
import argparse
import glob
import json
import os
import re
import sys
from collections import defaultdict

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
CVX = "http://hl7.org/fhir/sid/cvx"

# SNOMED CT semantic tags stripped from the end of displays.
SEMANTIC_TAGS = {
    "disorder", "procedure", "finding", "situation", "regime/therapy", "substance", "organism",
    "body structure", "observable entity", "physical object", "morphologic abnormality",
    "qualifier value", "record artifact", "person", "event", "environment", "product",
    "medicinal product", "clinical drug", "specimen", "attribute", "context-dependent category",
}
TAG_RE = re.compile(r"\s*\(([a-z /-]+)\)\s*$")

# Displays that are meaningless as search terms (Java Synthea / OpenMRS export artefacts).
# The code is still kept; only no term is generated from the display.
JUNK_DISPLAYS = {"loinc code", "encounter"}
# Generated variants too generic or ambiguous to be useful as search terms.
STOP_TERMS = {"act", "peg", "omaha", "phenx", "usp", "total score", "site", "stage", "status",
              "panel", "score", "tumor", "note", "plan", "care plan", "therapy", "encounter"}

# Specimens worth keeping in the short name so that e.g. urine glucose is not just "glucose".
QUALIFYING_SPECIMENS = (("urine", "urine"), ("stool", "stool"), ("venous blood", "venous"),
                        ("arterial blood", "arterial"))

# Trailing salt words dropped from RxNorm ingredient names ("lisinopril" for "lisinopril ...").
SALTS = {"hydrochloride", "hydrocholoride", "sodium", "potassium", "succinate", "tartrate",
         "maleate", "bitartrate", "sulfate", "acetate", "hyclate", "monohydrate", "propionate",
         "carbonate", "bromide", "hydrobromide", "calcium", "besylate", "citrate",
         "fumarate", "mesylate", "phosphate", "(usp)", "porcine", "alfa"}
SALT_KEEP = {"ferrous sulfate", "sodium fluoride", "protamine sulfate", "magnesium sulfate",
             "heparin sodium", "epoetin alfa", "lithium carbonate"}
DOSE_PREFIX_RE = re.compile(
    r"^(?:(?:abuse-deterrent|preservative-free|nda\d+|\d[\d.,]*\s*(?:ml|hr|actuat|mg|unt|day))\s+)+")


def clean_display(display):
    """Lower-case the display and drop a trailing SNOMED semantic tag."""
    d = " ".join(display.strip().split()).lower()
    m = TAG_RE.search(d)
    if m and m.group(1) in SEMANTIC_TAGS:
        d = d[: m.start()].rstrip()
    return d


def paren_variants(display):
    """'Body mass index (BMI) [Ratio]' -> 'body mass index [ratio]' and, when the parenthesised
    text is written as an abbreviation (upper case, one word), 'bmi'."""
    out = []
    for m in re.finditer(r"\(([^()]+)\)", display):
        inner = m.group(1).strip()
        stripped = " ".join((display[: m.start()] + display[m.end():]).split()).strip(" ,-")
        if stripped:
            out.append(stripped.lower())
        if " " not in inner and inner.upper() == inner and re.search(r"[A-Z]", inner):
            out.append(inner.lower())
    return out


# LOINC property / scale words seen in square brackets; anything else in brackets is an
# instrument name worth keeping as a term ("total score [dast-10]" -> "dast-10").
LOINC_PROPERTIES = {"mass/volume", "moles/volume", "#/volume", "#", "volume fraction", "entitic volume",
                    "entitic mass", "enzymatic activity/volume", "units/volume", "presence", "score",
                    "ratio", "percentile", "class", "time", "mass ratio", "partial pressure",
                    "volume rate/area", "mass difference", "t-score", "reported", "phenx",
                    "reported.phq", "reported.phq.teen", "omaha"}
METHOD_RE = re.compile(r"\s+by\s+(?:automated count|coagulation assay|test strip|pulse oximetry|"
                       r"calculation|rapid immunoassay|immunoassay|naa\b|ophthalmoscopy|oct$|"
                       r"screen method|creatinine-based formula|high sensitivity method|"
                       r"light microscopy|immune stain|fish$|lactate to pyruvate|probe\b).*$")
SPECIMEN_RE = re.compile(r"^(?:arterial |venous |capillary |upper )?(?:blood|serum|plasma|urine|stool|"
                         r"respiratory specimen|platelet poor plasma|nail bed|breast cancer specimen|"
                         r"cancer specimen|positive blood culture)\b")
QUESTION_RE = re.compile(r"^(?:are|do|does|did|have|has|how|what|within|in the|at any|is|when|which)\b")


def loinc_variants(term):
    """LOINC long names -> the analyte: 'glucose [mass/volume] in blood' -> 'glucose';
    urine/stool/arterial/venous analytes keep the specimen ('urine glucose');
    'cbc panel - blood by automated count' -> 'cbc panel'; 'total score [dast-10]' -> 'dast-10'."""
    if term.endswith("?") or QUESTION_RE.match(term):
        return []
    out = []
    for inner in re.findall(r"\[([^\]]+)\]", term):
        if inner not in LOINC_PROPERTIES and len(inner) >= 3:
            out.append(inner)
            base = term.split("[")[0].strip()
            if base in ("total score", "fall risk total", "fall risk level"):
                out.append(f"{inner} {base}")
    base = METHOD_RE.sub("", term.split("[")[0].strip()).strip()
    rest = re.search(r"\]\s*(.*)$", term)
    if rest and rest.group(1) and not re.match(r"(?:in|of|by|-)\b", rest.group(1)):
        # "[t-score] bone density", "[percentile] per age and sex": keep the qualifier
        base = f"{base} {rest.group(1)}"
    specimen = ""
    m = re.match(r"(.+?)\s+(?:in|of)\s+(.+)", base)
    if m and SPECIMEN_RE.match(m.group(2)):
        base, specimen = m.group(1).strip(), m.group(2)
    elif "[" in term:
        m = re.search(r"\]\s+(?:in|of)\s+(.+)", term)
        specimen = m.group(1) if m else ""
    m = re.match(r"(.+? panel)\b.*?\s+-\s+(.+)$", base)
    if m:
        base, specimen = m.group(1), m.group(2)
        base = re.sub(r"\s+\d{4}\s+panel$", " panel", base)  # "basic metabolic 2000 panel"
    base = re.sub(r"(?<=[a-z])\.(?=[a-z])", " ", base).strip(" ,-")
    if base and base != term and base not in ("total score",):
        qual = next((q for s, q in QUALIFYING_SPECIMENS if re.match(s + r"\b", specimen)), None)
        if qual and not base.startswith(qual):
            out.append(f"{qual} {base}")
            if qual in ("urine", "stool"):
                out.append(f"{base} in {qual}")
        else:
            out.append(base)
    return out


def ingredient_name(part):
    p = DOSE_PREFIX_RE.sub("", part.strip())
    words = []
    for w in p.split():
        if re.match(r"^\d", w):
            break
        words.append(w)
    name = " ".join(words).strip(" ,")
    if name in SALT_KEEP:
        return name
    ws = name.split()
    while len(ws) > 1 and ws[-1].strip(",") in SALTS and " ".join(ws) not in SALT_KEEP:
        ws = ws[:-1]
    return " ".join(ws).strip(" ,")


def rxnorm_variants(term):
    out = []
    brand = re.search(r"\[([^\]]+)\]\s*$", term)
    core = term[: brand.start()].strip() if brand else term
    parts = [ingredient_name(p) for p in core.split(" / ")]
    parts = [p for p in parts if p]
    if parts:
        out.append(" / ".join(parts))
        if len(parts) > 1:
            out.append(" and ".join(parts))
    if brand:
        out.append(brand.group(1).strip())
    # pack / device names such as "yaz 28 day pack" -> "yaz"
    m = re.match(r"^([a-z][a-z \-+]*?)\s+\d[\d.]*\s+(?:day pack|mg intrauterine system)", term)
    if m:
        out.append(m.group(1).strip())
    return out


def term_variants(system, display):
    if not display:
        return []
    full = clean_display(display)
    if full in JUNK_DISPLAYS:
        return []
    terms = [full]
    tagless = display.strip()
    m = TAG_RE.search(tagless.lower())
    if m and m.group(1) in SEMANTIC_TAGS:
        tagless = tagless[: m.start()]
    if system == LOINC:
        terms += loinc_variants(full)
        # "Body mass index (BMI) [Ratio]" -> "body mass index", "bmi"
        for p in paren_variants(tagless):
            short = loinc_variants(p)
            terms += short if short else ([p] if "[" not in p else [])
    elif system == RXNORM:
        terms += rxnorm_variants(full)
    elif system != CVX:
        terms += paren_variants(tagless)
    out = []
    for t in terms:
        t = " ".join(t.split()).replace(" ,", ",").strip(" ,;:-")
        if t and t not in out and t not in STOP_TERMS:
            out.append(t)
    return out


def codeable(c):
    if isinstance(c, dict):
        for coding in c.get("coding", []):
            if coding.get("code"):
                yield coding, c.get("text")


def concept_elements(r):
    rt = r.get("resourceType")
    if rt == "Observation":
        yield r.get("code")
        for comp in r.get("component", []):
            yield comp.get("code")
    elif rt in ("Condition", "Procedure", "AllergyIntolerance", "DiagnosticReport"):
        yield r.get("code")
    elif rt in ("MedicationRequest", "MedicationAdministration", "MedicationStatement"):
        yield r.get("medicationCodeableConcept")
    elif rt == "Immunization":
        yield r.get("vaccineCode")
    elif rt == "CarePlan":
        yield from r.get("category", [])
        for a in r.get("activity", []):
            yield (a.get("detail") or {}).get("code")
    elif rt == "Device":
        yield r.get("type")
    elif rt == "ImagingStudy":
        yield from r.get("procedureCode", [])
        for s in r.get("series", []):
            for key in ("bodySite", "modality"):
                if isinstance(s.get(key), dict):
                    yield {"coding": [s[key]]}
    elif rt == "Encounter":
        yield from r.get("type", [])
    elif rt == "DocumentReference":
        yield r.get("type")


def collect(data_dir):
    found = {}  # (system, code) -> {"display", "types": {rt: n}}
    files = sorted(glob.glob(os.path.join(data_dir, "synthea", "*.json"))) + \
        sorted(glob.glob(os.path.join(data_dir, "synthea-java", "*.json")))
    for path in files:
        with open(path, encoding="utf-8") as f:
            bundle = json.load(f)
        for entry in bundle.get("entry", []):
            r = entry.get("resource") or {}
            for el in concept_elements(r):
                for coding, text in codeable(el):
                    key = (coding.get("system", ""), coding["code"])
                    rec = found.setdefault(key, {"display": "", "types": defaultdict(int)})
                    if not rec["display"]:
                        rec["display"] = coding.get("display") or text or ""
                    rec["types"][r["resourceType"]] += 1
    return files, found


def fallback_display(system, code):
    """Codes without a display (e.g. the US Core CarePlan category 'assess-plan')."""
    if code == "assess-plan":
        return "assessment and plan"
    return code.replace("-", " ") if re.search(r"[a-z]", code) else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join("..", "shared", "data"))
    ap.add_argument("--synonyms", default=os.path.join("data", "synonyms.json"))
    ap.add_argument("--out", default=os.path.join("data", "vocabulary.json"))
    args = ap.parse_args()

    with open(args.synonyms, encoding="utf-8") as f:
        curated = json.load(f)["concepts"]
    files, found = collect(args.data)
    if not files:
        sys.exit(f"no bundles under {args.data}/synthea or {args.data}/synthea-java")

    curated_terms = {t for c in curated for t in c["terms"]}
    curated_term_owners = defaultdict(list)
    concepts = []
    for c in curated:
        concepts.append({"name": c["name"], "terms": list(c["terms"]), "codes": list(c["codes"]),
                         "types": list(c["types"]), "curated": True, "count": 0})
    for c in concepts:
        for t in c["terms"]:
            curated_term_owners[t].append(c)
    # code -> curated concept that owns it (the most specific one: fewest codes, then name)
    owner = {}
    for c in sorted(concepts, key=lambda c: (len(c["codes"]), c["name"])):
        for code in c["codes"]:
            owner.setdefault(code, c)

    n_generated = n_merged = 0
    for (system, code), rec in sorted(found.items()):
        display = rec["display"] or fallback_display(system, code)
        terms = [t for t in term_variants(system, display) if len(t) >= 3 or t in curated_terms]
        types = sorted(rec["types"])
        count = sum(rec["types"].values())
        target = owner.get(code)
        # A curated term belongs to its curated concept(s): do not attach it to another concept
        # about the same resource types (e.g. "bmi" stays off "bmi percentile"), nor to any other
        # concept when it names a whole resource type ("address" is the patient's, not the SDOH
        # observation's); the same word for another resource type is fine otherwise ("cefaclor"
        # the drug vs. the allergy).
        own_types = set(target["types"] if target is not None else []) | set(types)
        terms = [t for t in terms if not any(
            o is not target and (set(o["types"]) & own_types or not o["codes"])
            for o in curated_term_owners.get(t, ()))]
        if target is not None:
            n_merged += 1
            for t in terms:
                if t not in target["terms"]:
                    target["terms"].append(t)
            for t in types:
                if t not in target["types"]:
                    target["types"].append(t)
            target["count"] += count
            continue
        n_generated += 1
        name = terms[0] if terms else (clean_display(display) or code.lower())
        c = {"name": name, "terms": terms, "codes": [code], "types": types, "count": count}
        concepts.append(c)

    for c in concepts:
        c.pop("curated", None)
        if c["count"] == 0:
            del c["count"]
    concepts.sort(key=lambda c: (c["name"], c["codes"]))

    out = {
        "source": ("Generated by tools/build_vocabulary.py: hand-curated concepts from "
                   "data/synonyms.json merged with one concept per distinct code found in the "
                   f"Synthea FHIR bundles ({len(files)} files under "
                   "../shared/data/synthea and ../shared/data/synthea-java); terms are cleaned "
                   "displays, count is the number of occurrences in the data."),
        "concepts": concepts,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    text = json.dumps(out, indent=1, ensure_ascii=False, sort_keys=False) + "\n"
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{args.out}: {len(concepts)} concepts ({len(curated)} curated, {n_generated} generated, "
          f"{n_merged} codes merged into curated) from {len(found)} distinct codes in "
          f"{len(files)} files, {len(text) // 1024} KB")


if __name__ == "__main__":
    main()
