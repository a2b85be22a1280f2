#!/usr/bin/env python3
"""Writes the carebundle fixtures: US Core transaction bundles that are not Synthea's.

Usage (from the repository root, with carebundle 0.5.0 installed, e.g. in a venv):

    python3 -m venv ~/.cache/ehrqa/venv-carebundle
    ~/.cache/ehrqa/venv-carebundle/bin/pip install carebundle==0.5.0
    ~/.cache/ehrqa/venv-carebundle/bin/python tools/make_carebundle_fixtures.py [--out fixtures/carebundle]

carebundle (PyPI, Apache-2.0) generates US Core 6.1.0 profiled R4 transaction bundles whose
resources carry no `id`, only `urn:uuid:` fullUrls; lab results come as panels (a
DiagnosticReport per panel whose `result` lists its Observations), blood pressure as one
Observation with two components, codes with LOINC long common names, RxNorm and ICD-10-CM. Its
`inject_defects` removes fields, moves timestamps a year on, replaces numbers with text ("QNS",
"<0.1"), swaps code systems for a site-local one and appends near-duplicates (those carry an
`id`).

It writes, byte-identically for a given carebundle version (everything is seeded):

* `patients/`: six patients, one bundle each, five single-visit bundles of different profiles
  and visit dates (two with injected defects) and one four-visit blood-pressure history. These
  load together; `ehrqa ingest fixtures/carebundle/patients` ingests them.
* `defects.json`: the defects injected, as carebundle enumerates them, for tests.
  (One injected near-duplicate is a Patient: same name, new id, so 7 Patient resources.)
* `identity-clash/history-reuses-patient-0.json`: carebundle's history generator at the same
  seed and index as patient 0 reuses patient 0's `urn:uuid` for a differently named person born
  on another day. Ingested after `patients/`, it must be refused whole, never merged.
* `eval/questions-carebundle.jsonl` (`--questions`): questions with typed gold answers and gold
  evidence, read from the written bundles (defects included) rather than from ehrqa, asked in
  the words people use ("eGFR", "hypertension") rather than the codes' displays.
"""

import argparse
import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import carebundle
from carebundle import Imperfection, generate_bundle, generate_history, inject_defects, to_json

SEED = 20261130

# (index, profile, sex, visit date, defects seed or None)
BUNDLES = [
    (0, "type2_diabetes", "F", date(2026, 1, 1), None),
    (1, "hypertension", "M", date(2025, 9, 15), 11),
    (2, "ckd_stage3", "F", date(2026, 3, 2), None),
    (3, "anaemia", "M", date(2025, 5, 20), 13),
    (4, "healthy", "F", date(2024, 11, 5), None),
]
HISTORY = (12, "hypertension", "M", date(2026, 6, 1), 4)

DEFECTS = Imperfection(
    missing_field=0.3,
    duplicate_entry=0.05,
    out_of_order_timestamp=0.1,
    unparseable_value=0.15,
    unknown_code_system=0.15,
)

# carebundle writes FHIR decimals as JSON numbers with their precision ("1.50"); a JSON round
# trip through float would lose it, so decimals are marked while encoding and unquoted after.
_DEC = "@@FHIRDEC@@"
_DEC_RE = re.compile(rf'"{re.escape(_DEC)}([-+0-9.eE]+){re.escape(_DEC)}"')


def _mark(value):
    if isinstance(value, Decimal):
        return f"{_DEC}{value}{_DEC}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(doc) -> str:
    return _DEC_RE.sub(r"\1", json.dumps(doc, indent=2, default=_mark)) + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="fixtures/carebundle", type=Path)
    ap.add_argument("--questions", default="eval/questions-carebundle.jsonl", type=Path)
    args = ap.parse_args()
    assert carebundle.__version__ == "0.5.0", "the fixtures are carebundle 0.5.0's output"

    injected = {}
    for index, profile, sex, on, defects_seed in BUNDLES:
        bundle = generate_bundle(
            profile=profile, seed=SEED, sex=sex, index=index, reference_date=on
        )
        name = f"cb{index}-{profile.replace('_', '-')}"
        if defects_seed is None:
            text = to_json(bundle) + "\n"
        else:
            clean = json.loads(to_json(bundle), parse_float=Decimal)
            dirty, defects = inject_defects(clean, DEFECTS, seed=defects_seed)
            text = dumps(dirty)
            name += "-defects"
            injected[f"{name}.json"] = [
                {
                    "kind": d.kind,
                    "resource_type": d.resource_type,
                    "entry_index": d.entry_index,
                    "detail": d.detail,
                }
                for d in defects
            ]
        write(args.out / "patients" / f"{name}.json", text)

    index, profile, sex, last_visit, visits = HISTORY
    history = generate_history(
        profile=profile, seed=SEED, sex=sex, index=index, visits=visits, reference_date=last_visit
    )
    write(args.out / "patients" / f"cb{index}-{profile}-history.json", to_json(history) + "\n")
    write(args.out / "defects.json", json.dumps(injected, indent=2) + "\n")

    # Same seed and index as patient 0: the same Patient urn:uuid, another person.
    clash = generate_history(profile="hypertension", seed=SEED, sex="F", index=0, visits=2)
    write(args.out / "identity-clash" / "history-reuses-patient-0.json", to_json(clash) + "\n")
    make_questions(args.out / "patients", args.questions)


# ---------------------------------------------------------------------------------------------
# Questions: derived from the written bundles (defects included), not from ehrqa, so they test
# ehrqa against an independent reading of the data. Terms are what people say, not the displays.

LAB_TERMS = {
    "4548-4": "A1c",
    "2345-7": "glucose",
    "2160-0": "creatinine",
    "98979-8": "eGFR",
    "3094-0": "BUN",
    "2951-2": "sodium",
    "2823-3": "potassium",
    "2075-0": "chloride",
    "2028-9": "bicarbonate",
    "17861-6": "calcium",
    "1751-7": "albumin",
    "1742-6": "ALT",
    "1920-8": "AST",
    "6768-6": "alkaline phosphatase",
    "1975-2": "bilirubin",
    "718-7": "hemoglobin",
    "4544-3": "hematocrit",
    "6690-2": "white blood cell count",
    "777-3": "platelets",
    "2093-3": "total cholesterol",
    "2085-9": "HDL",
    "13457-7": "LDL",
    "2571-8": "triglycerides",
    "9318-7": "UACR",
    "8302-2": "height",
    "29463-7": "weight",
    "39156-5": "BMI",
    "8867-4": "heart rate",
    "9279-1": "respiratory rate",
    "8310-5": "temperature",
    "59408-5": "oxygen saturation",
    "85354-9": "blood pressure",
}
CONDITION_TERMS = {
    "I10": "hypertension",
    "E11.9": "type 2 diabetes",
    "E66.9": "obesity",
    "E78.00": "high cholesterol",
    "E78.5": "hyperlipidemia",
    "I25.10": "coronary artery disease",
    "N18.31": "chronic kidney disease",
    "N18.32": "chronic kidney disease",
    "D64.9": "anemia",
}
ABSENT_CONDITIONS = ["asthma", "COPD", "atrial fibrillation", "heart failure", "stroke", "depression",
                     "hypothyroidism", "diabetes", "chronic kidney disease", "anemia", "obesity"]
ABSENT_LABS = ["troponin", "TSH", "PSA", "INR", "ferritin"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def resources(path: Path):
    """(type, id, resource) of a bundle's entries; ids as ehrqa derives them from the fullUrl."""
    for entry in json.loads(path.read_text())["entry"]:
        r = entry["resource"]
        rid = r.get("id") or entry["fullUrl"].removeprefix("urn:uuid:")
        yield r["resourceType"], f"{r['resourceType']}/{rid}", r


def code_of(r):
    cc = r.get("code") or r.get("medicationCodeableConcept") or {}
    return (cc.get("coding") or [{}])[0].get("code")


def number(v):
    f = float(v)
    return int(f) if f.is_integer() else f


def make_questions(patients_dir: Path, out: Path) -> None:
    import random

    questions = []

    def ask(patient, kind, text, answer, evidence):
        text = text[0].upper() + text[1:]
        questions.append({"id": f"q{len(questions) + 1:04d}", "patient": patient, "kind": kind,
                          "question": text, "answer": answer, "evidence": evidence})

    for path in sorted(patients_dir.glob("*.json")):
        rng = random.Random(f"{SEED}:{path.name}")
        entries = list(resources(path))
        patient_id, patient = next((i, r) for t, i, r in entries if t == "Patient")
        sub, pos = ("he", "his") if patient.get("gender") == "male" else ("she", "her")
        patient_id = patient_id.removeprefix("Patient/")
        urn = f"urn:uuid:{patient_id}"
        mine = [(t, i, r) for t, i, r in entries if t != "Patient"
                and (r.get("subject") or r.get("patient") or {}).get("reference") == urn]
        # Observations per code, oldest first; near-duplicates (same code, same time) are left out.
        obs = {}
        for t, i, r in mine:
            if t == "Observation" and code_of(r) in LAB_TERMS:
                obs.setdefault(code_of(r), []).append((r["effectiveDateTime"], i, r))
        series = {c: sorted(v) for c, v in obs.items() if len({d for d, _, _ in v}) == len(v)}

        def gold(r):
            if "valueQuantity" in r:
                q = r["valueQuantity"]
                return {"type": "number", "value": number(q["value"]), "unit": q.get("unit")}
            if "component" in r:
                s, d = (number(c["valueQuantity"]["value"]) for c in r["component"])
                return {"type": "number", "value": s, "unit": "mmHg"}
            return {"type": "text", "value": r["valueString"]}

        def day_text(d, long):
            y, m, dd = int(d[:4]), int(d[5:7]), int(d[8:10])
            return f"{MONTHS[m - 1]} {dd}, {y}" if long else d[:10]

        codes = sorted(series)
        rng.shuffle(codes)
        # Two values the defects made unreadable come first: they must still be found and cited.
        unreadable = [c for c in codes if "valueString" in series[c][-1][2]][:2]
        codes = unreadable + [c for c in codes if c not in unreadable]
        for n, code in enumerate(codes[:4]):
            d, i, r = series[code][-1]
            if len(series[code]) > 1 and series[code][-2][0][:10] == d[:10]:
                continue
            t = ["What was {pos} most recent {term}?", "What is {pos} latest {term}?",
                 "Latest {term} result?"][n % 3]
            ask(patient_id, "latest_value", t.format(pos=pos, term=LAB_TERMS[code]), gold(r), [i])
        for n, code in enumerate(codes[4:6]):
            d, i, r = series[code][0]
            t = ["What was {pos} {term} on {date}?", "What {term} value was recorded on {date}?"][n % 2]
            ask(patient_id, "value_on_date",
                t.format(pos=pos, term=LAB_TERMS[code], date=day_text(d, n % 2 == 0)), gold(r), [i])
        bp = series.get("85354-9", [])
        if len(bp) >= 3:
            sys_of = [(gold(r)["value"], i, r) for _, i, r in bp]
            hi, lo = max(sys_of, key=lambda x: x[0]), min(sys_of, key=lambda x: x[0])
            ask(patient_id, "highest", f"What was {pos} highest blood pressure?", gold(hi[2]), [hi[1]])
            ask(patient_id, "lowest", "Lowest blood pressure on record?", gold(lo[2]), [lo[1]])
            first, last = bp[0], bp[-1]
            ask(patient_id, "trend", f"How has {pos} blood pressure changed over time?",
                {"type": "text", "value": f"{gold(first[2])['value']} -> {gold(last[2])['value']}"},
                [first[1], last[1]])
            for n, (d, i, r) in enumerate(bp[1:3]):
                ask(patient_id, "value_on_date",
                    f"What was {pos} blood pressure on {day_text(d, n == 0)}?", gold(r), [i])

        conds = [(r["onsetDateTime"], i, CONDITION_TERMS[code_of(r)]) for t, i, r in mine
                 if t == "Condition" and code_of(r) in CONDITION_TERMS]
        conds.sort(key=lambda c: (c[0], c[2]))
        for n, (d, i, term) in enumerate(conds[:2]):
            t = ["When was {sub} first diagnosed with {term}?", "When did {pos} {term} start?"][n % 2]
            ask(patient_id, "first_diagnosis", t.format(sub=sub, pos=pos, term=term),
                {"type": "date", "value": d[:10]}, [i])
        if conds:
            d, i, term = conds[-1]
            ask(patient_id, "ever_had_yes", f"Does {sub} have {term}?", {"type": "yes_no", "value": True}, [i])
        have = {term for _, _, term in conds} | ({"diabetes"} if "type 2 diabetes" in
                                                  {c[2] for c in conds} else set())
        if "hyperlipidemia" in have or "high cholesterol" in have:
            have |= {"hyperlipidemia", "high cholesterol"}
        absent = [c for c in ABSENT_CONDITIONS if c not in have]
        for n, term in enumerate(rng.sample(absent, 2)):
            t = ["Has {sub} ever been diagnosed with {term}?", "Any history of {term}?"][n % 2]
            ask(patient_id, "ever_had_no", t.format(sub=sub, term=term), {"type": "yes_no", "value": False}, [])
        ask(patient_id, "unanswerable", f"What was {pos} most recent {rng.choice(ABSENT_LABS)}?",
            {"type": "not_in_record"}, [])

        meds = [(i, r["medicationCodeableConcept"]["text"]) for t, i, r in mine
                if t == "MedicationRequest" and r.get("status") == "active"]
        if meds:
            ask(patient_id, "active_medications", f"What medications is {sub} currently taking?",
                {"type": "set", "values": [m for _, m in meds]}, [i for i, _ in meds])
        allergies = [(i, r["code"]["text"]) for t, i, r in mine if t == "AllergyIntolerance"]
        if allergies:
            ask(patient_id, "allergies", f"What is {sub} allergic to?",
                {"type": "set", "values": [a for _, a in allergies]}, [i for i, _ in allergies])
        visits = {}
        for t, i, r in mine:
            if t == "Encounter":
                visits.setdefault(r["period"]["start"][:4], []).append(i)
        for year in sorted(visits):
            ask(patient_id, "encounter_count", f"How many visits did {sub} have in {year}?",
                {"type": "count", "value": len(visits[year])}, visits[year])

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(q, separators=(",", ":")) + "\n" for q in questions))


if __name__ == "__main__":
    main()
